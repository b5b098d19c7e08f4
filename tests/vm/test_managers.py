"""eni-agent beside the images' own network managers, in real VMs:
tests/vm/managers/run.sh, one pytest test per image and group of scenarios.

One image holds NetworkManager, systemd-networkd, ifupdown + isc-dhclient,
cloud-init and netplan.io; a scenario boots it with the manager named on the
kernel command line, dnsmasq answering like the VPC, hot-adds a NIC and
restarts/reloads the manager while every address is probed through a
strict-rp_filter router. Debian 12 runs every scenario; Debian 13 (systemd
257, NetworkManager 1.52, cloud-init 25, netplan 1.x) NetworkManager,
networkd and cloud-init. The Debian 12 managers group runs controls
(`--control`): a scenario run with eni-agent's guard for it defeated must
fail, so a pass means something. The VM tier runs two groups at a time (pytest-xdist).
"""

from __future__ import annotations

import pytest

# (suite, scenarios, controls); tests/vm/conftest.py orders them for the VM tier.
GROUPS = {
    "debian12-managers": ("bookworm", ["nm", "networkd-catchall", "networkd-primary", "ifupdown",
                                       "networkd-reboot", "sync-retry", "upgrade"],
                          ["nm", "networkd-reboot"]),
    # (its control, `--control cloudinit`, ~5 min, runs by hand: tests/vm/managers/NOTES.md)
    "debian12-cloud-init": ("bookworm", ["cloudinit", "cloudinit-late"], []),
    "debian13": ("trixie", ["nm", "networkd-catchall", "cloudinit"], []),
}


@pytest.mark.vm
@pytest.mark.integration
@pytest.mark.parametrize("group", list(GROUPS))
def test_eni_agent_beside_each_network_manager(run_scenario, group):
    suite, scenarios, controls = GROUPS[group]
    args = [*scenarios, *(arg for control in controls for arg in ("--control", control))]
    proc = run_scenario("managers", 3600, *args, env={"ENI_AGENT_VM_SUITE": suite})
    tail = "\n".join(proc.stdout.splitlines()[-200:])
    assert proc.returncode == 0, \
        f"tests/vm/managers/run.sh {' '.join(args)} ({suite}) exited {proc.returncode}:\n{tail}"
