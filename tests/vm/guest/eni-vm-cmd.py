#!/usr/bin/python3
"""The guest command channel: run the host's shell commands, read from a
virtio-serial port, one JSON per line: {"id": N, "sh": "...", "timeout": S} ->
{"id": N, "rc": R, "out": "...", "err": "...", "seconds": T, "monotonic": M}
(M: this guest's clock when it answered). The host (tests/vm/lab/channel.py)
drives the guest through this, not through the network the test may break.
Installed in every image (build-image.sh); enabled by the scenarios that boot
with the port (failover/, managers/)."""
import json
import os
import subprocess
import time

PORT = "/dev/virtio-ports/eni-vm-cmd"

fd = os.open(PORT, os.O_RDWR)
buffer = b""
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        time.sleep(0.1)
        continue
    buffer += chunk
    while b"\n" in buffer:
        line, buffer = buffer.split(b"\n", 1)
        try:
            request = json.loads(line)
        except ValueError:
            continue
        start = time.monotonic()
        try:
            cp = subprocess.run(["sh", "-c", request["sh"]], capture_output=True, text=True,
                                timeout=request.get("timeout", 120))
            reply = {"rc": cp.returncode, "out": cp.stdout, "err": cp.stderr}
        except subprocess.TimeoutExpired:
            reply = {"rc": -1, "out": "", "err": "timed out"}
        reply.update(id=request.get("id"), seconds=round(time.monotonic() - start, 3),
                     monotonic=round(time.monotonic(), 3))
        data = json.dumps(reply).encode() + b"\n"
        while data:  # the port takes a large reply in parts
            data = data[os.write(fd, data):]
