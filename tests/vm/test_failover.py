"""Failover between two real VMs: tests/vm/failover-run.sh as one pytest test.

Two Debian 12 guests (qemu, software emulation, one vCPU each) boot the same
image with eni-agent installed from a wheel of this checkout, each reading its
own metadata stand-in at 100.100.100.200 (hardened mode). ENI X moves A->B and
back twice (the stand-in listing it 3 s after, then 3 s before, the NIC
appears) while a client beyond a strict-rp_filter router tries a TCP handshake
to each of X's addresses every 50 ms; every answer names the VM that gave it.
Gated like test_vm.py (ENI_AGENT_VM_TESTS). See NOTES.md ("Failover").
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .test_vm import _skip_reason

RUN = Path(__file__).with_name("failover-run.sh")


@pytest.mark.vm
@pytest.mark.integration
def test_eni_failover_between_two_vms():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(["bash", str(RUN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=1500)
    print(proc.stdout)
    tail = "\n".join(proc.stdout.splitlines()[-150:])
    assert proc.returncode == 0, f"tests/vm/failover-run.sh exited {proc.returncode}:\n{tail}"
