"""A /run that is read-only or full: `sync` exits 9 with one line naming the
path and the errno, having changed nothing; the daemon says it in STATUS=
(and does not hold boot for it). It used to be exit 1 "internal error", and a
daemon that never reported ready, logging a "netlink error".

Each agent runs in a private mount namespace (`unshare -m`) inside the guest's
network namespace, with a tmpfs of its own over /run: the host's /run is never
touched.
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.harness.agent import Agent, Run, assert_one_error_line
from tests.harness.commands import REPO
from tests.harness.kernel import dumps
from tests.harness.daemon import run_daemon
from tests.harness.expect import eni_problems
from tests.harness.metadata import metadata_file
from tests.harness.commands import run_in
from tests.harness.kernel import guest_state
from tests.harness.metadata import build_metadata


RUN_MOUNTS = {
    "read-only": "mount -t tmpfs -o ro,size=64k eni-t-run /run",
    # every inode and every byte taken, as a /run filled by a runaway logger
    "full": ("mount -t tmpfs -o size=16k,nr_inodes=8 eni-t-run /run"
             " && { i=0; while touch /run/f$i 2>/dev/null; do i=$((i+1)); done;"
             " cat /dev/zero >/run/f0 2>/dev/null; true; }"),
}
ERRNO = {"read-only": "(EROFS)", "full": "(ENOSPC)"}


def with_own_run(how: str, *argv: str) -> list[str]:
    """`argv` in a private mount namespace whose /run is a tmpfs `how`."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'{RUN_MOUNTS[how]} && exec "$@"', "sh", *argv]


@pytest.mark.parametrize("how", sorted(RUN_MOUNTS))
def test_sync_exits_9_with_one_line_and_changes_nothing(topology_with_eni, tmp_path, how):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    env = {k: v for k, v in agent.env.items() if k != "ENI_AGENT_LOCK"}  # the default lock
    before = dumps(guest_state(t))
    argv = ["sync", "--config", str(agent.no_config), "--metadata", str(agent.metadata)]
    cp = run_in(t.guest, *with_own_run(how, sys.executable, "-m", "eni_agent", *argv),
                cwd=REPO, env=env, timeout=60)
    line = assert_one_error_line(Run(argv, cp), 9)
    assert line.startswith("eni-agent: cannot write the runtime path /run/eni-agent"), line
    assert ERRNO[how] in line, line
    assert dumps(guest_state(t)) == before


def test_the_daemon_says_it_in_status_and_does_not_hold_boot(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path, start=False) as d:
        d.argv[4:4] = with_own_run("read-only")  # after `ip netns exec GUEST`
        d.env.pop("ENI_AGENT_LOCK")
        d.start()
        ready = d.wait_ready(timeout=25)
        status = ready.fields["STATUS"]
        assert re.fullmatch(r"cannot apply: cannot write the runtime path /run/eni-agent\S*: "
                            r"Read-only file system \(EROFS\); is /run full or read-only\?",
                            status), status
        assert d.alive() and eni_problems(t, t.eni("eth1")), "eth1 configured without the lock?"
        assert d.log_lines("(EROFS)") and not d.log_lines("netlink error"), d.log_text()
        print(f"READY after {ready.at - d.started_at:.1f}s: {status}")
