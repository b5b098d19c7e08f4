"""An agent under `ip netns exec` leaves the host's network-manager files
alone: those managers never see the namespace's links. (The whole suite is
also checked at its end by tests/conftest.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from tests.harness.agent import Agent
from tests.harness.commands import REPO
from tests.harness.commands import run_in


HOST_FILES = (Path("/run/systemd/network"), Path("/etc/NetworkManager/conf.d"),
              Path("/etc/dhcp/dhclient-enter-hooks.d"), Path("/run/eni-agent"))
ASK = "from eni_agent.host import in_initial_netns; print(in_initial_netns())"


def listing() -> dict[str, list[tuple[str, int]]]:
    return {str(d): sorted((p.name, p.stat().st_mtime_ns) for p in d.iterdir()) if d.is_dir()
            else [] for d in HOST_FILES}


def test_the_agent_knows_a_namespace_of_its_own(topology):
    inside = run_in(topology.guest, sys.executable, "-c", ASK, cwd=REPO, check=True)
    outside = subprocess.run([sys.executable, "-c", ASK], cwd=REPO, capture_output=True,
                             text=True, check=True)
    assert (inside.stdout.strip(), outside.stdout.strip()) == ("False", "True")


def test_sync_and_cleanup_in_a_namespace_write_no_host_file(topology_with_eni, tmp_path):
    before = listing()
    agent = Agent(topology_with_eni, tmp_path)
    agent.write()
    agent.converge()
    assert agent.cleanup().code == 0
    assert listing() == before
