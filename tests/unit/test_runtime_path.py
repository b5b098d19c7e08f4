"""A runtime path that cannot be written is exit 9, one line naming the path
and the errno: the apply lock's directory, and (for `sync`) the files under
/run that keep the network managers off the ENIs. The namespace tests
(tests/integration/test_runtime_path_unusable.py) do it with a read-only and a
full /run; here the path runs through a regular file (ENOTDIR), which even
root cannot write through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eni_agent import coexist
from eni_agent.coexist import Managers, Paths
from eni_agent.config import Config
from eni_agent.errors import RuntimePathUnusable
from eni_agent.lock import apply_lock
from eni_agent.model import parse_metadata

from tests.harness.documents import EXAMPLE_BYTES, SECOND_MAC, assert_one_line

EVERY_MANAGER = Managers(networkmanager=True, networkd=True, dhclient=True)


def test_a_lock_whose_directory_cannot_be_made_is_exit_9(tmp_path):
    (tmp_path / "run").write_text("a file, not a directory")
    with pytest.raises(RuntimePathUnusable) as info:
        with apply_lock(str(tmp_path / "run" / "eni-agent" / "apply.lock")):
            pass
    assert info.value.exit_code == 9
    assert_one_line(info.value.message)
    assert info.value.message == (f"cannot write the runtime path {tmp_path}/run/eni-agent: Not a "
                                  "directory (ENOTDIR); is /run full or read-only?")


@pytest.fixture
def broken_run(tmp_path) -> Paths:
    """Every manager present; /run a regular file."""
    paths = Paths.under(tmp_path)
    (tmp_path / "run").write_text("")
    return paths


def test_strict_apply_refuses_before_writing_anything(broken_run):
    metadata = parse_metadata(EXAMPLE_BYTES)
    with pytest.raises(RuntimePathUnusable) as info:
        coexist.apply(Config(), metadata, broken_run, EVERY_MANAGER, reload=False, strict=True)
    assert info.value.exit_code == 9
    assert str(broken_run.run_dir.parent) in info.value.message and "(ENOTDIR)" in \
        info.value.message
    # the /run files come first: nothing under /etc was written
    assert not broken_run.nm_conf_dir.exists() and not broken_run.dhclient_hooks_dir.exists()


def test_the_daemon_s_apply_logs_and_goes_on(broken_run, caplog):
    applied = coexist.apply(Config(), parse_metadata(EXAMPLE_BYTES), broken_run, EVERY_MANAGER,
                            reload=False)
    assert len(applied.failed) == 2  # the networkd unit and the dhclient MAC list
    assert (broken_run.nm_conf_dir / coexist.NM_CONF_NAME).read_text().count(SECOND_MAC) == 1
    assert sum("cannot keep" in r.message for r in caplog.records) == 2


def test_a_full_run_dir_names_the_file_and_enospc(tmp_path, monkeypatch):
    """What a tmpfs out of space answers when the file is written."""
    import errno

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(coexist, "_write", full)
    paths = Paths.under(tmp_path)
    doc = json.loads(EXAMPLE_BYTES)
    with pytest.raises(RuntimePathUnusable) as info:
        coexist.apply(Config(), parse_metadata(json.dumps(doc)), paths,
                      Managers(networkd=True), reload=False, strict=True)
    unit = paths.networkd_runtime_dir / coexist.networkd_unit_name(SECOND_MAC)
    assert info.value.message == (f"cannot write the runtime path {unit}: No space left on "
                                  "device (ENOSPC); is /run full or read-only?")
