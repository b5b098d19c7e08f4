"""The VM lab: what every VM scenario of tests/vm (basic/, failover/, managers/)
drives its guests with, one module per concern.

    network   the namespaces (router with strict rp_filter, client), a tap per NIC, `Nic`
    qemu      a guest under qemu (TCG) driven through QMP: boot, hot-add, power off
    channel   the guest command channel (virtio-serial, guest/eni-vm-cmd.py)
    probes    TCP handshakes from the client namespace, once or continuously
    state     a guest's kernel state, read through the channel, judged
    verdict   a scenario's problems and figures

The shell side is tests/vm/lib.sh (`vm_runner`: every run.sh's start) and
tests/vm/build-image.sh (the image every scenario boots).
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path


class TestFailure(Exception):
    """A scenario cannot go on: the run fails with this message."""


def scenario_args(doc: str, work_help: str) -> argparse.Namespace:
    """IMAGE_DIR WORK_DIR [--tag TAG], what a scenario's run.sh passes its host
    half (both directories resolved, WORK_DIR made); from here on SIGTERM (a CI
    timeout) runs the same cleanup as a failure."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("image_dir", type=Path, help="vm.img, vmlinuz, initrd.img (build-image.sh)")
    parser.add_argument("work_dir", type=Path, help=work_help)
    parser.add_argument("--tag", default=str(os.getpid()),
                        help="names the namespaces eni-vm-TAG-* and the taps")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    args.image_dir, args.work_dir = args.image_dir.resolve(), args.work_dir.resolve()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    return args
