#!/usr/bin/python3
"""The failover test's command channel: JSON lines on virtio-serial port
eni-fo.cmd. A request {"id": N, "argv": [...]} runs a command and answers
{"id": N, "rc", "stdout", "stderr"}; {"id": N, "state": true} answers
{"id": N, "state": <kernel state>}, in the single-VM test's format (its
kernel_state, from eni-vm-test.py, so host.py's check_state reads it);
{"id": N, "timeline": {"mac", "ifname", "since"}} answers eni-vm-test.py's
hotplug_timeline (PCI device, udev's rename, eni-agent's changes: journal
times, guest monotonic seconds)."""
import importlib.util
import json
import os
import subprocess
import time

PORT = "/dev/virtio-ports/eni-fo.cmd"
spec = importlib.util.spec_from_file_location("eni_vm_test", "/usr/local/lib/eni-vm/eni-vm-test.py")
eni_vm_test = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eni_vm_test)


def answer(request: dict) -> dict:
    if request.get("state"):
        return {"state": eni_vm_test.kernel_state()}
    if request.get("timeline"):
        t = request["timeline"]
        return {"timeline": eni_vm_test.hotplug_timeline(t["mac"], t["ifname"], t["since"])}
    try:
        cp = subprocess.run(request["argv"], capture_output=True, text=True,
                            timeout=request.get("timeout", 60))
        return {"rc": cp.returncode, "stdout": cp.stdout, "stderr": cp.stderr}
    except (OSError, subprocess.SubprocessError) as e:
        return {"rc": -1, "stdout": "", "stderr": f"{type(e).__name__}: {e}"}


def main() -> None:
    while not os.path.exists(PORT):
        time.sleep(0.1)
    fd = os.open(PORT, os.O_RDWR)
    buffer = b""
    while True:
        data = os.read(fd, 65536)
        if not data:  # the host is not connected
            time.sleep(0.1)
            continue
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            reply = json.dumps({"id": request.get("id"), **answer(request)}).encode() + b"\n"
            while reply:  # a port takes at most 32 KiB per write
                reply = reply[os.write(fd, reply):]


if __name__ == "__main__":
    main()
