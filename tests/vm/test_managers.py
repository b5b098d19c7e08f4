"""eni-agent beside the images' own network managers, in real VMs:
tests/vm/managers/run.sh as one pytest test (gated like test_vm.py).

One image holds NetworkManager, systemd-networkd and ifupdown + isc-dhclient;
a scenario per manager (NetworkManager default config, networkd catch-all,
networkd primary-only, ifupdown allow-hotplug + dhcp) boots it with dnsmasq
answering like the VPC, hot-adds a NIC and restarts/reloads the manager
while every address is probed through a strict-rp_filter router.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.vm.test_vm import _skip_reason

RUN = Path(__file__).parent / "managers" / "run.sh"


@pytest.mark.vm
@pytest.mark.integration
def test_eni_agent_beside_each_network_manager():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(["bash", str(RUN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=2400)
    print(proc.stdout)
    tail = "\n".join(proc.stdout.splitlines()[-200:])
    assert proc.returncode == 0, f"tests/vm/managers/run.sh exited {proc.returncode}:\n{tail}"
