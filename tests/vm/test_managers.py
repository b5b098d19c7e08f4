"""eni-agent beside the images' own network managers, in real VMs:
tests/vm/managers/run.sh as one pytest test (gated like test_vm.py).

One image holds NetworkManager, systemd-networkd and ifupdown + isc-dhclient;
a scenario per manager (NetworkManager default config, networkd catch-all,
networkd primary-only, ifupdown allow-hotplug + dhcp) boots it with dnsmasq
answering like the VPC, hot-adds a NIC and restarts/reloads the manager
while every address is probed through a strict-rp_filter router.
"""

from __future__ import annotations

import pytest


@pytest.mark.vm
@pytest.mark.integration
def test_eni_agent_beside_each_network_manager(run_scenario):
    proc = run_scenario("managers", timeout=2400)
    tail = "\n".join(proc.stdout.splitlines()[-200:])
    assert proc.returncode == 0, f"tests/vm/managers/run.sh exited {proc.returncode}:\n{tail}"
