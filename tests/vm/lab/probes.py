"""TCP probes from the client namespace to a guest's addresses."""

from __future__ import annotations

import selectors
import socket
import threading
import time

from tests.harness.namespaces import in_netns
from tests.vm.lab.network import Network

PROBE_TIMEOUT = 3.0


class Prober:
    """TCP handshakes (plus a ping/pong exchange) from the client namespace."""

    def __init__(self, net: Network, port: int):
        self.net, self.port = net, port

    def socket(self) -> socket.socket:
        return in_netns(self.net.client, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))

    def probe(self, addr: str, timeout: float = PROBE_TIMEOUT) -> str | None:
        """None if `addr` answered "pong <addr>"; else why not."""
        sock = self.socket()
        try:
            sock.settimeout(timeout)
            sock.connect((addr, self.port))
            sock.sendall(b"ping\n")
            answer = sock.makefile("rb").readline(64).decode(errors="replace").strip()
            return None if answer == f"pong {addr}" else f"answered {answer!r}"
        except OSError as e:
            return f"{type(e).__name__}: {e}"
        finally:
            sock.close()

    def first_handshake(self, addr: str, timeout: float, interval: float = 0.05) -> float | None:
        """Start a handshake with `addr` every `interval` s, several in flight;
        the monotonic time the first one completed (then checked with a probe)."""
        sel = selectors.DefaultSelector()
        start = next_try = time.monotonic()
        try:
            while time.monotonic() < start + timeout:
                if time.monotonic() >= next_try:
                    sock = self.socket()
                    sock.setblocking(False)
                    sock.connect_ex((addr, self.port))
                    sel.register(sock, selectors.EVENT_WRITE, time.monotonic())
                    next_try += interval
                for key, _ in sel.select(max(0.0, next_try - time.monotonic())):
                    sel.unregister(key.fileobj)
                    ok = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    key.fileobj.close()
                    if ok:
                        done = time.monotonic()
                        return done if self.probe(addr) is None else None
                for key in list(sel.get_map().values()):  # give up on stale attempts
                    if time.monotonic() - key.data > 2.0:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
            return None
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()
            sel.close()


class ContinuousProbe(threading.Thread):
    """Probe the targets round-robin, one every `interval` s, until stopped."""

    def __init__(self, prober: Prober, targets: list[str], interval: float = 0.05):
        super().__init__(name="continuous-probe", daemon=True)
        self.prober, self.interval = prober, interval
        self.targets = list(targets)
        self.results: list[tuple[float, str, str | None]] = []  # (monotonic, addr, failure)
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def add(self, addr: str) -> None:
        with self.lock:
            self.targets.append(addr)

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            with self.lock:
                addr = self.targets[i % len(self.targets)]
            i += 1
            failure = self.prober.probe(addr)
            self.results.append((time.monotonic(), addr, failure))
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join()

