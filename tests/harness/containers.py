"""A Docker-style container next to the ENIs, for the `main_table_first`
tests: a bridge `docker0` (172.17.0.1/16) in the guest, a container namespace
on it (172.17.0.2), and published ports as Docker makes them (nft DNAT of
`<address>:<port>` to the container, for traffic arriving and for the
host's own connections)."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Iterator

from .commands import ip, run_in, set_sysctls
from .namespaces import create_namespace, delete_namespace, in_netns

BRIDGE_IP, CONTAINER_IP = "172.17.0.1", "172.17.0.2"


@contextlib.contextmanager
def container(topo) -> Iterator[str]:
    """The container's namespace, on docker0 in the guest; torn down after."""
    ctr = create_namespace("ctr", topo.tag)
    try:
        ip(topo.guest, "link", "add", "docker0", "type", "bridge")
        ip(topo.guest, "addr", "add", f"{BRIDGE_IP}/16", "dev", "docker0")
        ip(topo.guest, "link", "add", "vethc", "type", "veth", "peer", "name", "eth0",
           "netns", ctr)
        ip(topo.guest, "link", "set", "vethc", "master", "docker0")
        for dev in ("docker0", "vethc"):
            ip(topo.guest, "link", "set", dev, "up")
        ip(ctr, "addr", "add", f"{CONTAINER_IP}/16", "dev", "eth0")
        ip(ctr, "link", "set", "eth0", "up")
        ip(ctr, "link", "set", "lo", "up")
        ip(ctr, "route", "add", "default", "via", BRIDGE_IP)
        set_sysctls(topo.guest, {"net.ipv4.ip_forward": 1})
        yield ctr
    finally:
        delete_namespace(ctr)


def publish(topo, addresses: list[str], port: int) -> None:
    """`docker run -p <address>:<port>:<port>` for each address, as nft DNAT."""
    daddrs = ", ".join(addresses)
    rules = f"""
table ip docker {{
  chain prerouting {{ type nat hook prerouting priority -100;
    ip daddr {{ {daddrs} }} tcp dport {port} dnat to {CONTAINER_IP}:{port}
  }}
  chain output {{ type nat hook output priority -100;
    ip daddr {{ {daddrs} }} tcp dport {port} dnat to {CONTAINER_IP}:{port}
  }}
}}
"""
    run_in(topo.guest, "nft", "-f", "-", input=rules, check=True)


@contextlib.contextmanager
def serving(ctr: str, port: int, answer: bytes = b"container") -> Iterator[None]:
    """A TCP server in the container on `port` that answers `answer` to each
    connection, until the block ends."""
    server = in_netns(ctr, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(16)
    server.settimeout(0.1)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, name="ctr-server", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        server.close()


def fetch(client_ns: str, address: str, port: int, *, source: str | None = None,
          timeout: float = 1.0) -> bytes | None:
    """What a TCP server at address:port answers a client in `client_ns`, or None."""
    client = in_netns(client_ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        client.settimeout(timeout)
        if source:
            client.bind((source, 0))
        client.connect((address, port))
        return client.recv(64) or None
    except OSError:
        return None
    finally:
        client.close()
