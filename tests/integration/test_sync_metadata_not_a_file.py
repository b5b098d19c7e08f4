"""A metadata path that is not a regular file is refused at once (a FIFO
must not hang the agent), and a symlink is trusted only if its own owner is:
the documented exit code, one line, nothing changed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.harness.agent import Agent, assert_one_error_line
from tests.harness.kernel import dumps, guest_state


def _fifo(workdir: Path) -> Path:
    path = workdir / "metadata.json"
    os.mkfifo(path, 0o600)
    return path


@pytest.mark.parametrize("make, kind", [
    (_fifo, "a FIFO"),
    (lambda workdir: Path("/dev/zero"), "a character device"),
    (lambda workdir: workdir, "a directory"),
])
def test_not_a_regular_file_is_refused_at_once(topology_with_eni, tmp_path, make, kind):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    workdir = tmp_path / "m"
    workdir.mkdir(mode=0o700)
    path = make(workdir)
    before = dumps(guest_state(t))
    for command in ("sync", "status", "validate"):
        start = time.monotonic()
        res = agent.run(command, "--metadata", path)
        assert time.monotonic() - start < 30, "the agent waited on the path"
        line = assert_one_error_line(res, 4)
        assert line == f"eni-agent: metadata {path}: cannot read: is {kind}, not a regular file"
    assert dumps(guest_state(t)) == before


def test_symlink_owned_by_another_user_in_a_sticky_directory_is_refused(topology_with_eni,
                                                                        tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    target = agent.write()
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    link = sticky / "metadata.json"
    link.symlink_to(target)
    before = dumps(guest_state(t))

    os.lchown(link, 65534, 65534)
    line = assert_one_error_line(agent.sync(metadata=link), 6)
    assert f"symlink {link} is owned by uid 65534" in line, line
    assert dumps(guest_state(t)) == before

    os.lchown(link, 0, 0)  # the same link, root's: read
    assert agent.sync("--json", metadata=link).code == 0
