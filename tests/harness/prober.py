"""The one TCP prober: real handshakes (plus a few bytes each way) between
sockets created inside the namespaces via setns(2) in a short-lived helper
thread: no subprocesses to leak, and a failing probe returns False after
``timeout`` seconds.

    inbound_handshake(topo, "10.0.1.10")    # host -> a guest listener on that IP
    outbound_handshake(topo, "10.0.1.10")   # a guest socket bound to that IP -> host
    assert_traffic(topo, eni_ips(topo))     # both ways, every address
"""

from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Iterable

from .enis import HOST_IP, HOST_IPV6
from .namespaces import in_netns

if TYPE_CHECKING:
    from .topology import Topology

log = logging.getLogger(__name__)

FAIL_TIMEOUT = 0.5      # for probes that are expected to fail


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        # RST instead of FIN: no TIME_WAIT left behind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


def tcp_handshake(server_ns: str, server_ip: str, client_ns: str, *,
                  client_source: str | None = None, listen_ip: str | None = None,
                  timeout: float = 2.0) -> bool:
    """True if a client in ``client_ns`` (bound to ``client_source`` if given)
    completes a TCP handshake with ``server_ip`` on a listener in ``server_ns``
    (bound to ``listen_ip``, default ``server_ip``) and both sides exchange a
    few bytes; False otherwise. IPv6 when ``server_ip`` is an IPv6 address.

    Never takes much longer than ``timeout`` seconds. Each probe listens on a
    fresh ephemeral port, so probes never collide with each other or with
    TIME_WAIT sockets. The reason for a failure is logged at DEBUG level.
    """
    deadline = time.monotonic() + timeout
    server = client = conn = None
    what = f"{client_ns}[{client_source or '*'}] -> {server_ns}[{server_ip}]"
    try:
        family = socket.AF_INET6 if ":" in server_ip else socket.AF_INET
        server = in_netns(server_ns, lambda: socket.socket(family, socket.SOCK_STREAM))
        server.bind((listen_ip or server_ip, 0))
        server.listen(4)
        port = server.getsockname()[1]

        client = in_netns(client_ns, lambda: socket.socket(family, socket.SOCK_STREAM))
        if client_source:
            client.bind((client_source, 0))
        client.settimeout(timeout)
        client.connect((server_ip, port))
        local = client.getsockname()

        server.settimeout(max(0.05, deadline - time.monotonic()))
        conn, peer = server.accept()
        if peer != local:  # would mean NAT or a stray connection
            log.debug("%s: accepted %s, expected %s", what, peer, local)
            return False
        conn.settimeout(max(0.05, deadline - time.monotonic()))
        client.settimeout(max(0.05, deadline - time.monotonic()))
        client.sendall(b"ping")
        if conn.recv(16) != b"ping":
            return False
        conn.sendall(b"pong")
        return client.recv(16) == b"pong"
    except OSError as exc:  # timeouts, ECONNREFUSED, EHOSTUNREACH, EADDRNOTAVAIL ...
        log.debug("%s: %r", what, exc)
        return False
    finally:
        for sock in (conn, client, server):
            _close(sock)


def inbound_handshake(topo: Topology, guest_ip: str, *, timeout: float = 2.0) -> bool:
    """True if ``host`` completes a TCP handshake with a listener in the guest
    bound to ``guest_ip`` (and they exchange a few bytes)."""
    return tcp_handshake(topo.guest, guest_ip, topo.host, timeout=timeout)


def outbound_handshake(topo: Topology, source_ip: str, *, timeout: float = 2.0) -> bool:
    """True if a guest socket bound to ``source_ip`` completes a TCP handshake
    with a listener on the host (and they exchange a few bytes). An IPv6
    ``source_ip`` connects to the host's IPv6 address."""
    host_ip = HOST_IPV6 if ":" in source_ip else HOST_IP
    return tcp_handshake(topo.host, host_ip, topo.guest, client_source=source_ip,
                         timeout=timeout)


def answers_on_any_address(topo: Topology, addr: str, timeout: float = FAIL_TIMEOUT) -> bool:
    """True if a guest listener on 0.0.0.0 accepts a connection from the host
    to ``addr``: unlike inbound_handshake, this does not need ``addr`` to be
    bindable, so it shows whether the guest still answers on it at all."""
    return tcp_handshake(topo.guest, addr, topo.host, listen_ip="0.0.0.0", timeout=timeout)


def traffic_failures(topo: Topology, addrs: Iterable[str]) -> list[str]:
    """Which of inbound (host -> addr) / outbound (guest bound to addr -> host)
    handshakes fail; empty when all work."""
    failed = []
    for addr in addrs:
        if not inbound_handshake(topo, addr):
            failed.append(f"host -> {addr}")
        if not outbound_handshake(topo, addr):
            failed.append(f"{addr} -> host")
    return failed


def assert_traffic(topo: Topology, addrs: Iterable[str]) -> None:
    """Every address completes TCP handshakes in both directions."""
    failed = traffic_failures(topo, addrs)
    assert not failed, f"handshakes failed: {failed}"


def assert_traffic6(topo: Topology, addrs: Iterable[str]) -> None:
    """assert_traffic for IPv6 addresses."""
    failed = traffic_failures(topo, addrs)
    assert failed == [], f"IPv6 handshakes failed: {failed}"


def eni_ips(topo: Topology, *ifnames: str) -> list[str]:
    """The private IPs of the named attached ENIs (all of them if none named)."""
    names = ifnames or tuple(topo.enis)
    return [addr for name in names for addr in topo.eni(name).ips]
