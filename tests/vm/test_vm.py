"""eni-agent in a real VM: tests/vm/basic/run.sh as one pytest test.

The guest boots Debian 12 with systemd and udev under qemu (software
emulation), with eni-agent installed from its .deb, built from this checkout; the host
proves with TCP handshakes through a strict-rp_filter router that every ENI
address answers through its own NIC, across a NIC hot-added through QMP, a
`systemctl restart` and a `systemctl stop` of the agent. See NOTES.md.
1.2-2.6 min with a cached base rootfs, 2.5-4.5 min without (NOTES.md).
"""

from __future__ import annotations

import pytest


@pytest.mark.vm
@pytest.mark.integration
def test_eni_agent_in_a_real_vm(run_scenario):
    proc = run_scenario("basic", timeout=1800)
    tail = "\n".join(proc.stdout.splitlines()[-150:])
    assert proc.returncode == 0, f"tests/vm/basic/run.sh exited {proc.returncode}:\n{tail}"
