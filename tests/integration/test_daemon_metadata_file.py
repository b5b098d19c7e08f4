"""The metadata file changes under a running daemon: good documents are
applied at once (replaced by rename or written in place); torn, invalid or
missing documents change nothing and never kill the daemon."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness.daemon import configured_daemon
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, guest_state
from tests.harness.metadata import (build_metadata, metadata_file, write_in_place,
                                    write_json_atomically)
from tests.harness.prober import traffic_failures

APPLY_TIMEOUT = 3.0  # seconds; the daemon reacts to inotify, typically in well under 0.1 s
THREE_IPS = ("10.0.1.10", "10.0.1.11", "10.0.1.12")
QUIET = 1.0  # seconds to watch for (absent) changes after a bad document


def _doc_bytes(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _assert_nothing_changes(d, t, before: dict) -> None:
    time.sleep(QUIET)
    assert guest_state(t) == before, describe(t)
    assert d.alive()


@pytest.fixture
def setup(topology_with_eni, tmp_path):
    """(topology, eth1, metadata path listing eth1)."""
    t = topology_with_eni
    return t, t.eni("eth1"), metadata_file(tmp_path, build_metadata(t))


def test_replaced_by_rename_adding_an_ip_adds_address_and_rule(setup, tmp_path):
    t, eni, path = setup
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:
        t.assign_private_ip("eth1", "10.0.1.12")  # the cloud side first, then the document
        write_json_atomically(build_metadata(t), path)
        took = d.wait_until(lambda: not eni_problems(t, eni, ips=THREE_IPS), APPLY_TIMEOUT,
                            what="10.0.1.12 configured")
        print(f"rename -> applied in {took:.3f}s")
        d.wait_log("add rule 10000: from 10.0.1.12 lookup")
        assert traffic_failures(t, ["10.0.1.12", "10.0.1.10"]) == []


def test_written_in_place_removing_an_ip_removes_address_and_rule(setup, tmp_path):
    t, eni, path = setup
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:
        t.unassign_private_ip("eth1", "10.0.1.11")
        write_in_place(path, _doc_bytes(build_metadata(t)))
        took = d.wait_until(lambda: not eni_problems(t, eni, ips=("10.0.1.10",)), APPLY_TIMEOUT,
                            what="10.0.1.11 removed")
        print(f"in-place write -> applied in {took:.3f}s")
        assert traffic_failures(t, ["10.0.1.10"]) == []


def test_torn_write_changes_nothing_then_a_valid_write_applies(setup, tmp_path):
    t, eni, path = setup
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:
        before = guest_state(t)
        t.unassign_private_ip("eth1", "10.0.1.11")
        good = _doc_bytes(build_metadata(t))  # would remove 10.0.1.11, if it were whole
        write_in_place(path, good[:len(good) // 2])

        d.wait_log("invalid metadata")
        _assert_nothing_changes(d, t, before)
        complaints = d.log_lines("invalid metadata")
        assert len(complaints) == 1, complaints
        assert str(path) in complaints[0] and "keeping the last good document" in complaints[0]

        write_in_place(path, good)
        d.wait_until(lambda: not eni_problems(t, eni, ips=("10.0.1.10",)), APPLY_TIMEOUT,
                     what="the valid document applied")
        assert traffic_failures(t, ["10.0.1.10"]) == []


def test_invalid_document_ip_outside_cidr_changes_nothing(setup, tmp_path):
    t, eni, path = setup
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:
        before = guest_state(t)
        doc = build_metadata(t)
        entry = doc["network"]["interfaces"]["macs"][eni.mac]
        entry["private-ipv4s"] = ["10.0.1.10", "10.0.9.9"]  # drops .11, adds an impossible IP
        write_json_atomically(doc, path)

        d.wait_log("invalid metadata")
        _assert_nothing_changes(d, t, before)
        line = d.log_lines("invalid metadata")[0]
        assert "10.0.9.9 is outside vswitch-cidr-block 10.0.1.0/24" in line, line
        # Only this ENI's own fields are wrong: it alone is set aside and left
        # as it is (issue 12 §4); a whole-document refusal keeps the last good one.
        assert "eth1: invalid metadata" in line, line
        assert traffic_failures(t, eni.ips) == []


def test_deleted_file_changes_nothing_and_a_new_file_is_applied(setup, tmp_path):
    """Metadata unavailable is never "no ENIs"; the directory stays watched."""
    t, eni, path = setup
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:
        before = guest_state(t)
        path.unlink()

        d.wait_log("file not found")
        _assert_nothing_changes(d, t, before)
        assert "keeping the last good document" in d.log_lines("file not found")[0]
        assert traffic_failures(t, eni.ips) == []

        t.assign_private_ip("eth1", "10.0.1.12")
        write_json_atomically(build_metadata(t), path)
        d.wait_until(lambda: not eni_problems(t, eni, ips=THREE_IPS), APPLY_TIMEOUT,
                     what="the re-created document applied")
