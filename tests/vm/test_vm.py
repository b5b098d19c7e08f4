"""eni-agent in a real VM: tests/vm/run.sh as one pytest test.

The guest boots Debian 12 with systemd and udev under qemu (software
emulation), with eni-agent installed from its .deb, built from this checkout; the host
proves with TCP handshakes through a strict-rp_filter router that every ENI
address answers through its own NIC, across a NIC hot-added through QMP, a
`systemctl restart` and a `systemctl stop` of the agent. See NOTES.md.
1.2-2.6 min with a cached base rootfs, 2.5-4.5 min without (NOTES.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).with_name("run.sh")


def _skip_reason() -> str | None:
    wanted = os.environ.get("ENI_AGENT_VM_TESTS")
    if wanted == "0":
        return "ENI_AGENT_VM_TESTS=0"
    if os.geteuid() != 0:
        return "the VM test needs root (taps, namespaces, chroot)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun for the guest's taps"
    missing = [tool for tool in ("qemu-system-x86_64", "mmdebstrap") if not shutil.which(tool)]
    if missing and wanted != "1":
        return f"{', '.join(missing)} not installed (ENI_AGENT_VM_TESTS=1 installs them)"
    return None


@pytest.mark.vm
@pytest.mark.integration
def test_eni_agent_in_a_real_vm():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(["bash", str(RUN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=1800)
    print(proc.stdout)
    tail = "\n".join(proc.stdout.splitlines()[-150:])
    assert proc.returncode == 0, f"tests/vm/run.sh exited {proc.returncode}:\n{tail}"
