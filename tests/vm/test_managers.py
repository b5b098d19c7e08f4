"""eni-agent beside the images' own network managers, in real VMs:
tests/vm/managers/run.sh, one pytest test per image and group of scenarios
(gated like test_vm.py).

One image holds NetworkManager, systemd-networkd, ifupdown + isc-dhclient,
cloud-init and netplan.io; a scenario boots it with the manager named on the
kernel command line, dnsmasq answering like the VPC, hot-adds a NIC and
restarts/reloads the manager while every address is probed through a
strict-rp_filter router. Debian 12 runs every scenario; Debian 13 (systemd
257, NetworkManager 1.52, cloud-init 25, netplan 1.x) NetworkManager,
networkd and cloud-init. Each group has a control (`--control`): the scenario
run with eni-agent's guard for it defeated must fail, so a pass means
something. The VM tier runs two groups at a time (pytest-xdist).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.vm.test_vm import _skip_reason

RUN = Path(__file__).parent / "managers" / "run.sh"

# (suite, scenarios, controls): the longest first, so two workers finish together.
GROUPS = {
    "debian12-managers": ("bookworm", ["nm", "networkd-catchall", "networkd-primary", "ifupdown",
                                       "sync-retry", "upgrade"], ["nm"]),
    "debian12-cloud-init": ("bookworm", ["cloudinit", "cloudinit-late"], ["cloudinit-late"]),
    "debian13": ("trixie", ["nm", "networkd-catchall", "cloudinit", "cloudinit-late"],
                 ["cloudinit"]),
}


@pytest.mark.vm
@pytest.mark.integration
@pytest.mark.parametrize("group", list(GROUPS))
def test_eni_agent_beside_each_network_manager(group):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    suite, scenarios, controls = GROUPS[group]
    argv = ["bash", str(RUN), *scenarios]
    for control in controls:
        argv += ["--control", control]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=3600, env={**os.environ, "ENI_AGENT_VM_SUITE": suite})
    print(proc.stdout)
    tail = "\n".join(proc.stdout.splitlines()[-200:])
    assert proc.returncode == 0, f"{' '.join(argv[1:])} ({suite}) exited {proc.returncode}:\n{tail}"
