"""`sync` and `cleanup` run by a user other than root: exit 6 and one line
(not an internal error from the lock's PermissionError), nothing changed."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness.agent import Agent, Run, assert_one_error_line, write_config
from tests.harness.commands import REPO, run_in
from tests.harness.kernel import dumps, guest_state
from tests.harness.metadata import build_metadata, write_metadata

pytestmark = [
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]

NOBODY = "65534"


@pytest.fixture
def readable_dir():
    """Root's files that user nobody may read (tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="eni-agent-not-root-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def as_nobody(agent: Agent, *argv: str) -> Run:
    cp = run_in(agent.topo.guest, "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                "--clear-groups", sys.executable, "-m", "eni_agent", *argv,
                cwd=REPO, env=agent.env, timeout=60)
    return Run(list(argv), cp)


@pytest.mark.parametrize("lock", ["default", "in a root directory"])
def test_sync_and_cleanup_as_nobody_exit_6_with_one_line(topology_with_eni, tmp_path,
                                                         readable_dir, lock):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    if lock == "default":
        agent.env.pop("ENI_AGENT_LOCK")  # /run/eni-agent/apply.lock
    else:
        agent.env["ENI_AGENT_LOCK"] = str(readable_dir / "run" / "apply.lock")
    metadata = write_metadata(build_metadata(t), readable_dir / "metadata.json")
    metadata.chmod(0o644)
    config = write_config(readable_dir / "config.toml", "", 0o644)
    before = dumps(guest_state(t))

    for argv in (["sync", "--metadata", str(metadata)], ["sync", "--json", "--metadata",
                                                         str(metadata)], ["cleanup"]):
        res = as_nobody(agent, *argv, "--config", str(config))
        assert "Traceback" not in res.stderr, str(res)
        line = assert_one_error_line(res, 6)
        assert "cannot take the lock" in line and "needs root" in line, line
    assert dumps(guest_state(t)) == before


def test_metadata_nobody_may_read_is_exit_6(topology_with_eni, tmp_path, readable_dir):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    metadata = agent.write()  # under root's own tmp_path: 0600 in a 0700 tree
    config = write_config(readable_dir / "config.toml", "", 0o644)
    res = as_nobody(agent, "sync", "--metadata", str(metadata), "--config", str(config))
    line = assert_one_error_line(res, 6)
    assert "cannot read: Permission denied" in line, line
