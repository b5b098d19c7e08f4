"""The guest command channel: the host runs shell commands in a guest through
a virtio-serial port (guest/eni-vm-cmd.py), not through the network a test may
break. JSON lines: {"id", "sh", "timeout"} -> {"id", "rc", "out", "err",
"seconds", "monotonic"} (`monotonic`: the guest's clock when it answered)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Protocol

from tests.vm.lab import TestFailure

PORT_NAME = "eni-vm-cmd"  # the guest's /dev/virtio-ports/eni-vm-cmd


def channel_args(path: Path) -> list[str]:
    """qemu's arguments for the port, its host end a unix socket at `path`."""
    return ["-device", "virtio-serial-pci",
            "-chardev", f"socket,id=cmd,path={path},server=on,wait=off",
            "-device", f"virtserialport,chardev=cmd,name={PORT_NAME}"]


class ChannelVm(Protocol):
    cmd_path: Path

    def alive(self) -> bool: ...


class Guest:
    """One guest's command channel; safe to share between threads."""

    def __init__(self, vm: ChannelVm):
        self.vm = vm
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.next_id = 1
        self.lock = threading.Lock()

    def connect(self, timeout: float) -> float:
        """Wait until the guest answers (requests sent before its reader runs
        are lost); the monotonic time it first did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.vm.alive():
                raise TestFailure("qemu exited during boot")
            if self.sock is None and self.vm.cmd_path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(self.vm.cmd_path))
                    self.sock = sock
                except OSError:  # the socket file exists before qemu listens on it
                    sock.close()
            if self.sock is not None:
                try:
                    self.run("true", timeout=1.0)
                    return time.monotonic()
                except TestFailure:
                    pass
            else:
                time.sleep(0.2)
        raise TestFailure(f"the guest's command port did not answer within {timeout:.0f} s")

    def run(self, command: str, timeout: float = 120.0) -> dict:
        """`sh -c command` in the guest, given `timeout` s there (and 5 s more here)."""
        with self.lock:
            if self.sock is None:
                raise TestFailure("the guest's command port is not connected")
            request_id = self.next_id
            self.next_id += 1
            self.sock.sendall(json.dumps({"id": request_id, "sh": command,
                                          "timeout": timeout}).encode() + b"\n")
            deadline = time.monotonic() + timeout + 5
            while True:
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    try:
                        reply = json.loads(line)
                    except ValueError:
                        continue
                    if reply.get("id") == request_id:  # an earlier, timed-out one's is dropped
                        return reply
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TestFailure(f"guest command timed out: {command}")
                self.sock.settimeout(min(remaining, 1.0))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise TestFailure("the guest's command port closed")
                self.buffer += chunk

    def json(self, command: str, timeout: float = 120.0) -> object:
        """What `command` printed, as JSON ([] for nothing)."""
        out = self.run(command, timeout)["out"].strip()
        return json.loads(out) if out else []

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
