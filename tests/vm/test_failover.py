"""Failover between two real VMs: tests/vm/failover/run.sh as one pytest test.

Two Debian 12 guests (qemu, software emulation, one vCPU each) boot the same
image with eni-agent installed from its .deb, built from this checkout, each
reading its own metadata stand-in at 100.100.100.200 (hardened mode). ENI X
moves A->B and back twice (the stand-in listing it 3 s after, then 3 s before,
the NIC appears) while a client beyond a strict-rp_filter router tries a TCP
handshake to each of X's addresses every 50 ms; every answer names the VM that
gave it. Gated like test_vm.py (ENI_AGENT_VM_TESTS). See NOTES.md ("Failover").
"""

from __future__ import annotations

import pytest


@pytest.mark.vm
@pytest.mark.integration
def test_eni_failover_between_two_vms(run_scenario):
    proc = run_scenario("failover", timeout=1500)
    tail = "\n".join(proc.stdout.splitlines()[-150:])
    assert proc.returncode == 0, f"tests/vm/failover/run.sh exited {proc.returncode}:\n{tail}"
