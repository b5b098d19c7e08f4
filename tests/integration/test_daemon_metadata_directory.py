"""The metadata file's directory missing at start, or replaced while running.

The daemon watches the file's path with inotify (its directory, and every
symlink on the way). If the directory does not exist when the daemon starts, or is deleted and re-created later (a
config manager or cloud-init re-creating /etc/eni-agent), the watch must be
re-established, or metadata changes are only noticed by the periodic resync
(30 s by default) instead of at once; and the periodic resync must keep
applying what no watch can see.
"""

from __future__ import annotations

import json
import os
import shutil

from tests.harness.daemon import run_daemon
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe
from tests.harness.metadata import (build_metadata, metadata_file, write_in_place,
                                    write_json_atomically)

THREE_IPS = ("10.0.1.10", "10.0.1.11", "10.0.1.12")
FOUR_IPS = (*THREE_IPS, "10.0.1.13")
PROMPT = 2.0  # seconds; a watched change is applied in ~0.1 s


def _add_an_ip(t, path) -> None:
    t.assign_private_ip("eth1", "10.0.1.12")
    write_json_atomically(build_metadata(t), path)


def test_directory_created_after_start_is_picked_up(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = tmp_path / "etc" / "metadata.json"  # etc/ does not exist yet
    with run_daemon(t, path, tmp_path) as d:
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith("waiting for metadata"))
        metadata_file(tmp_path, build_metadata(t))
        d.wait_ready(timeout=10)  # by the retry with backoff (a few seconds at most here)
        assert eni_problems(t, t.eni("eth1")) == [], describe(t)


def test_changes_are_seen_at_once_when_the_directory_appeared_after_start(
        topology_with_eni, tmp_path):
    t = topology_with_eni
    path = tmp_path / "etc" / "metadata.json"
    with run_daemon(t, path, tmp_path) as d:
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith("waiting for metadata"))
        metadata_file(tmp_path, build_metadata(t))
        d.wait_ready(timeout=10)
        _add_an_ip(t, path)
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1"), ips=THREE_IPS), PROMPT,
                     what="the change applied")


def test_changes_are_seen_at_once_after_the_directory_was_re_created(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path) as d:
        d.wait_ready()
        shutil.rmtree(path.parent)
        d.wait_log("file not found")
        path.parent.mkdir(mode=0o700)
        _add_an_ip(t, path)
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1"), ips=THREE_IPS), PROMPT,
                     what="the change applied")


def test_periodic_resync_still_applies_changes_after_the_directory_was_re_created(
        topology_with_eni, tmp_path):
    """With --resync-interval 1. The re-created directory holds a symlink to a
    file elsewhere (the watch follows it). The last change is one no watch can
    see: the file written in place through a hard link in another directory
    (inotify reports a write in the directory it was opened through). Only
    the periodic resync can apply it."""
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    target = elsewhere / "metadata.json"
    with run_daemon(t, path, tmp_path, resync_interval=1) as d:
        d.wait_ready()
        shutil.rmtree(path.parent)
        d.wait_log("file not found")
        t.assign_private_ip("eth1", "10.0.1.12")
        write_json_atomically(build_metadata(t), target)
        path.parent.mkdir(mode=0o700)
        path.symlink_to(target)
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1"), ips=THREE_IPS), 5.0,
                     what="the symlinked document applied")

        alias = tmp_path / "alias"
        alias.mkdir(mode=0o700)
        os.link(target, alias / "metadata.json")
        t.assign_private_ip("eth1", "10.0.1.13")
        write_in_place(alias / "metadata.json", json.dumps(build_metadata(t)).encode())
        d.wait_until(lambda: not eni_problems(t, t.eni("eth1"), ips=FOUR_IPS), 5.0,
                     what="the change applied by the periodic resync")
        d.wait_log("add address 10.0.1.13/")  # logged just after the kernel has it
        (added,) = d.log_lines("add address 10.0.1.13/")
        assert "periodic resync" in added and "metadata file changed" not in added, added
