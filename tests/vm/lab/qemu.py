"""A guest under qemu (software emulation) in the router namespace, driven
through QMP (qemu's machine-readable monitor)."""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.vm.lab import TestFailure
from tests.vm.lab.network import Network, Nic

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Vm:
    # A scenario's VM (failover.py, matrix.py) overrides these and the methods below `start`.
    name, smp = "eni-vm", 2
    reboot = False  # a guest reboot ends qemu (-no-reboot) unless a variant reboots it

    def __init__(self, image_dir: Path, work: Path, net: Network):
        self.image_dir, self.work, self.net = image_dir, work, net
        self.qmp_path = work / "qmp.sock"
        self.report_path = work / "report.txt"
        self.console_path = work / "console.txt"
        self.proc: subprocess.Popen | None = None
        self.qmp: Qmp | None = None

    def start(self) -> None:
        for p in (self.qmp_path, self.report_path, self.console_path):
            p.unlink(missing_ok=True)
        self.report_path.touch()
        argv = ["ip", "netns", "exec", self.net.router, "nice", "-n", "10",
                "qemu-system-x86_64", "-name", self.name, "-accel", "tcg,thread=multi",
                "-cpu", "max", "-smp", str(self.smp), "-m", "1024", "-machine", "q35",
                "-nodefaults", *([] if self.reboot else ["-no-reboot"]), "-display", "none",
                "-kernel", str(self.image_dir / "vmlinuz"),
                "-initrd", str(self.image_dir / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=1"
                + self.kernel_args(),
                "-drive", f"file={self.image_dir / 'vm.img'},format=raw,if=virtio,cache=unsafe",
                "-serial", f"file:{self.console_path}", "-serial", f"file:{self.report_path}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-pidfile", str(self.work / "qemu.pid"),
                # a PCIe root port to hot-add the ENI into (q35's root bus has no hotplug)
                "-device", "pcie-root-port,id=hotplug0,chassis=1,slot=1"]
        for nic in self.boot_nics():
            argv += ["-netdev", f"tap,id={nic.netdev},ifname={nic.tap},script=no,downscript=no",
                     "-device", f"virtio-net-pci,netdev={nic.netdev},mac={nic.mac}"]
        argv += self.extra_args()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=open(self.work / "qemu.log", "wb"),
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 30
        while not self.qmp_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TestFailure(f"qemu did not start: {(self.work / 'qemu.log').read_text()}")
            time.sleep(0.05)
        self.qmp = Qmp(self.qmp_path)

    def boot_nics(self) -> list[Nic]:
        return [nic for nic in self.net.nics if not nic.hot]

    def kernel_args(self) -> str:
        return ""

    def extra_args(self) -> list[str]:
        return []

    def hot_add(self, nic: Nic) -> None:
        self.qmp.execute("netdev_add", type="tap", id=nic.netdev, ifname=nic.tap,
                         script="no", downscript="no")
        self.qmp.execute("device_add", driver="virtio-net-pci", netdev=nic.netdev, mac=nic.mac,
                         id=f"dev-{nic.netdev}", bus="hotplug0")

    def hot_remove(self, nic: Nic, timeout: float = 60) -> float:
        """device_del, wait until the guest has let go of the device (the
        monotonic time it was seen gone), then drop its backend (the tap)."""
        dev = f"dev-{nic.netdev}"
        self.qmp.execute("device_del", id=dev)
        deadline = time.monotonic() + timeout
        while True:
            present = {p["name"] for p in self.qmp.execute("qom-list", path="/machine/peripheral")}
            if dev not in present:
                gone = time.monotonic()
                break
            if time.monotonic() > deadline:
                raise TestFailure(f"{self.name}: {dev} still present {timeout:.0f} s after "
                                  "device_del")
            time.sleep(0.02)
        self.qmp.execute("netdev_del", id=nic.netdev)
        return gone

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def power_off(self) -> None:
        """The guest powers itself off after DONE; otherwise QMP `quit`."""
        if self.alive():
            try:
                self.qmp.execute("quit")
            except (OSError, TestFailure):
                pass
            self.wait_exit(10)

    def kill(self) -> None:
        if self.qmp:
            self.qmp.close()
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Qmp:
    def __init__(self, path: Path):
        # qemu creates the socket file before it listens on it: on a loaded
        # machine a connect can fall in between.
        deadline = time.monotonic() + 10
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            try:
                self.sock.connect(str(path))
                break
            except ConnectionRefusedError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while True:
            line = self.file.readline()
            if not line:
                raise TestFailure("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def execute(self, command: str, **arguments) -> object:
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        if "error" in reply:
            raise TestFailure(f"QMP {command}: {reply['error']}")
        return reply.get("return")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

