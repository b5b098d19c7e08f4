"""Network-namespace test topology for eni-agent integration tests.

A :class:`Topology` models a VM in an Alibaba Cloud VPC using three fresh
network namespaces joined by veth pairs::

    guest                        router                         host
    eth0 10.0.0.5/24  ---------  rv0 10.0.0.253  (gw)
    eth1 (ENI, DOWN)  ---------  rv1 10.0.1.253  (gw)
    ...                          rh  192.168.100.1  ----------  eth0 192.168.100.2/24
                                                                default via .1

* ``guest``: ``lo`` up; ``eth0`` configured as an image's DHCP client would
  (``10.0.0.5/24`` + kernel prefix route + ``default via 10.0.0.253 proto dhcp``).
  ENI NICs appear with the chosen MAC and name, DOWN and unconfigured: the
  agent under test configures them.
* ``router``: forwards (``ip_forward=1``) with STRICT reverse-path filtering
  (``rp_filter=1`` on all/default/every interface), so a reply that leaves the
  guest through the wrong NIC is dropped (counted as ``TcpExt
  IPReversePathFilter``, see :func:`netstat_counter`). Like a VPC, it routes
  each private IP (``/32``) to the ENI it is assigned to; the vswitch gateway
  address sits on the router end of each ENI with ``noprefixroute``, so
  several ENIs may share one vswitch.
* ``host``: a host beyond the router, ``192.168.100.2``.

IPv6 (only with ``Topology(ipv6=True)``; otherwise IPv6 is disabled
everywhere): NICs created with IPv6 fields (``make_eni(i, n_ipv6=N)``,
``primary_eni(ipv6=True)``) get it like IPv4: the router holds each vswitch's
IPv6 gateway (``2001:db8:<i>::fffd/64``, nodad, noprefixroute) on the ENI's
link and routes each ENI IPv6 ``/128`` to it; it forwards IPv6; the host has
``2001:db8:ff::2/64`` with a default via the router (``2001:db8:ff::1``); the
guest's primary NIC gets its IPv6 address and a default route (``proto ra``) as
SLAAC would. The kernel has no IPv6 rp_filter, so the router emulates the
strict check with rules (``ipv6_rpf=True``, the default): a packet from an ENI
IPv6 address is forwarded only if it arrived on that ENI's link
(``from ADDR iif LINK lookup main`` at 100, ``from ADDR blackhole`` at 101).

Namespace names are ``eni-t-<random>-<pid>-<role>``. Topologies are always
torn down (context manager / fixture finaliser / atexit), and
:func:`cleanup_stale_namespaces` removes those whose creating process died.

Traffic probes (:func:`inbound_handshake`, :func:`outbound_handshake`) use real
TCP handshakes from sockets created inside the namespaces via ``setns(2)`` in
a short-lived helper thread: no subprocesses to leak, and a failing probe
returns False after ``timeout`` seconds.

Everything here needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN).
"""

from __future__ import annotations

import atexit
import copy
import ctypes
import dataclasses
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

log = logging.getLogger(__name__)

#: Every namespace created by this module starts with this prefix.
PREFIX = "eni-t-"

PRIMARY_MAC = "00:16:3e:00:00:01"
HOST_IP = "192.168.100.2"
HOST_IPV6 = "2001:db8:ff::2"
ROUTER_HOST_SIDE_IPV6 = "2001:db8:ff::1"
#: Priorities of the router's IPv6 strict reverse-path rules (ipv6_rpf).
RPF6_ACCEPT_PRIORITY, RPF6_DROP_PRIORITY = 100, 101
ROUTER_HOST_SIDE_IP = "192.168.100.1"
HOST_CIDR = "192.168.100.0/24"
DEFAULT_VPC_CIDR = "10.0.0.0/16"
DEFAULT_VPC_ID = "vpc-a"

_NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_NAME_RE = re.compile(r"^eni-t-[0-9a-f]+-(?P<pid>\d+)-[a-z]+$")

# Namespaces created by this process and not yet deleted (atexit fallback).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()

T = TypeVar("T")


# --------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------

def is_root() -> bool:
    """True when running as root (the integration tests need it)."""
    return os.geteuid() == 0


class CommandError(subprocess.CalledProcessError):
    """A failed command; its message includes the command's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}: {(self.stderr or '').strip()}"


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
        **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` (text mode, output captured). Raise on failure if ``check``,
    with the command's stderr in the message."""
    argv = [str(a) for a in argv]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and cp.returncode != 0:
        raise CommandError(cp.returncode, argv, cp.stdout, cp.stderr)
    return cp


def run_in(ns: str, *argv: Any, check: bool = False, timeout: float = 60,
           **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` inside namespace ``ns`` (``ip netns exec NS ...``).

    Returns the CompletedProcess with text stdout/stderr; does not raise on a
    non-zero exit unless ``check=True``. Extra kwargs (``cwd``, ``env``,
    ``input``...) go to :func:`subprocess.run`.
    """
    return run(["ip", "netns", "exec", ns, *argv], check=check, timeout=timeout, **kwargs)


def ip(ns: str | None, *args: Any, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip [-n NS] ARGS...``; raises on failure by default."""
    prefix = ["ip"] if ns is None else ["ip", "-n", ns]
    return run([*prefix, *args], check=check)


def ip_json(ns: str, *args: Any) -> list[dict]:
    """Kernel state as parsed JSON: ``ip -n NS -j ARGS...``.

    Examples: ``ip_json(ns, "rule")``, ``ip_json(ns, "route", "show", "table",
    "all")``, ``ip_json(ns, "-d", "addr")``.
    """
    out = ip(ns, "-j", *args).stdout.strip()
    return json.loads(out) if out else []


def set_sysctls(ns: str, values: dict[str, Any]) -> None:
    """Set sysctls (``{"net.ipv4.ip_forward": 1, ...}``) inside ``ns``."""
    if values:
        run_in(ns, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items()), check=True)


def get_sysctl(ns: str, key: str) -> str:
    """Read one sysctl inside ``ns`` (value as a string)."""
    return run_in(ns, "sysctl", "-n", key, check=True).stdout.strip()


def netstat_counter(ns: str, name: str, section: str = "TcpExt") -> int:
    """A counter from ``/proc/net/netstat`` (or ``/proc/net/snmp``) in ``ns``.

    ``netstat_counter(topo.router, "IPReversePathFilter")`` counts IP packets
    the router dropped because of rp_filter. ARP requests dropped by
    rp_filter are NOT counted: a guest that ARPs for the eth0 gateway with
    an ENI address as sender IP (arp_announce=0) gets no answer, so the
    packet never leaves the guest and this counter does not move.
    """
    text = run_in(ns, "cat", "/proc/net/netstat", "/proc/net/snmp", check=True).stdout
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2]):
        sect, _, names = header.partition(":")
        if sect != section:
            continue
        table = dict(zip(names.split(), values.partition(":")[2].split()))
        if name in table:
            return int(table[name])
    raise KeyError(f"{section}:{name} not found in {ns}")


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------

def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list``)."""
    out = run(["ip", "-j", "netns", "list"]).stdout.strip()
    return [entry["name"] for entry in json.loads(out)] if out else []


def create_namespace(role: str, tag: str | None = None) -> str:
    """Create a namespace ``eni-t-<tag>-<pid>-<role>`` (``lo`` up) and return its name."""
    tag = tag or secrets.token_hex(3)
    name = f"{PREFIX}{tag}-{os.getpid()}-{role}"
    run(["ip", "netns", "add", name])
    with _LIVE_LOCK:
        _LIVE.add(name)
    ip(name, "link", "set", "lo", "up")
    return name


def delete_namespace(name: str) -> None:
    """Delete namespace ``name`` (its veths go with it). Missing is fine."""
    cp = run(["ip", "netns", "delete", name], check=False)
    if cp.returncode != 0 and os.path.exists(os.path.join(_NETNS_DIR, name)):
        raise RuntimeError(f"cannot delete netns {name}: {cp.stderr.strip()}")
    with _LIVE_LOCK:
        _LIVE.discard(name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale_namespaces() -> list[str]:
    """Delete leftover ``eni-t-*`` namespaces from crashed earlier runs.

    A namespace is stale when the PID embedded in its name is no longer alive
    (or the name does not follow our pattern), so a concurrently running test
    session keeps its namespaces. Returns the deleted names.
    """
    deleted = []
    for name in list_namespaces():
        if not name.startswith(PREFIX):
            continue
        m = _NAME_RE.match(name)
        if m and _pid_alive(int(m["pid"])):
            continue
        try:
            delete_namespace(name)
            deleted.append(name)
        except RuntimeError as exc:  # pragma: no cover - best effort
            log.warning("%s", exc)
    return deleted


@atexit.register
def _delete_live_namespaces() -> None:
    """Last-resort cleanup if the process exits with topologies still alive."""
    for name in sorted(_LIVE):
        try:
            delete_namespace(name)
        except Exception:  # pragma: no cover - best effort at exit
            pass


# --------------------------------------------------------------------------
# setns(2) helpers
# --------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, _CLONE_NEWNET)
        return
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Call ``fn()`` in a helper thread that has joined namespace ``ns``.

    Sockets keep the namespace they were created in, so
    ``in_netns(ns, socket.socket)`` yields a socket living in ``ns`` that
    can be used from any thread. The calling thread's namespace is untouched.
    """
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            fd = os.open(os.path.join(_NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as exc:  # re-raised in the caller
            result["error"] = exc

    thread = threading.Thread(target=worker, name=f"in-netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


# --------------------------------------------------------------------------
# TCP probes
# --------------------------------------------------------------------------

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
                  client_source: str | None = None, timeout: float = 2.0) -> bool:
    """True if a client in ``client_ns`` (bound to ``client_source`` if given)
    completes a TCP handshake with a listener in ``server_ns`` bound to
    ``server_ip`` and both sides exchange a few bytes; False otherwise.
    IPv6 when ``server_ip`` is an IPv6 address.

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
        server.bind((server_ip, 0))
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


def inbound_handshake(topo: "Topology", guest_ip: str, *, timeout: float = 2.0) -> bool:
    """True if ``host`` completes a TCP handshake with a listener in the guest
    bound to ``guest_ip`` (and they exchange a few bytes)."""
    return tcp_handshake(topo.guest, guest_ip, topo.host, timeout=timeout)


def outbound_handshake(topo: "Topology", source_ip: str, *, timeout: float = 2.0) -> bool:
    """True if a guest socket bound to ``source_ip`` completes a TCP handshake
    with a listener on the host (and they exchange a few bytes). An IPv6
    ``source_ip`` connects to the host's IPv6 address."""
    host_ip = HOST_IPV6 if ":" in source_ip else HOST_IP
    return tcp_handshake(topo.host, host_ip, topo.guest, client_source=source_ip,
                         timeout=timeout)


# --------------------------------------------------------------------------
# ENIs
# --------------------------------------------------------------------------

@dataclasses.dataclass
class Eni:
    """One NIC as the cloud sees it.

    ``ips`` are the private IPv4s assigned to the ENI, primary first; the
    router routes exactly those to this ENI. ``eni_id``/``vswitch_id`` only
    feed the metadata document. ``router_ifname`` is filled in by the
    topology (the router end of the veth).

    IPv6 (optional): ``ipv6s`` assigned to the ENI in the vswitch's
    ``ipv6_cidr``, whose gateway is ``ipv6_gateway`` (in the CIDR, or
    link-local); used only by topologies with ``ipv6=True`` (and written to
    the metadata document when set).
    """
    mac: str
    ifname: str
    cidr: str
    gateway: str
    ips: tuple[str, ...] = ()
    eni_id: str | None = None
    vswitch_id: str | None = None
    router_ifname: str | None = None
    ipv6s: tuple[str, ...] = ()
    ipv6_cidr: str | None = None
    ipv6_gateway: str | None = None
    queues: int = 1  # the veth's rx and tx queues (a multi-queue NIC: config `queues`)

    def __post_init__(self) -> None:
        self.mac = self.mac.lower()
        self.ips = tuple(self.ips)
        net = self.network
        for addr in (self.gateway, *self.ips):
            if ipaddress.ip_address(addr) not in net:
                raise ValueError(f"{addr} is not in {self.cidr}")
        self.ipv6s = tuple(self.ipv6s)
        if self.ipv6s or self.ipv6_cidr or self.ipv6_gateway:
            if not (self.ipv6_cidr and self.ipv6_gateway):
                raise ValueError("IPv6 needs ipv6_cidr and ipv6_gateway")
            net6 = self.ipv6_network
            for addr in (self.ipv6_gateway, *self.ipv6s):
                if ipaddress.ip_address(addr) not in net6 and not (
                        addr == self.ipv6_gateway and ipaddress.ip_address(addr).is_link_local):
                    raise ValueError(f"{addr} is not in {self.ipv6_cidr}")

    @property
    def ipv6_network(self) -> ipaddress.IPv6Network | None:
        return ipaddress.IPv6Network(self.ipv6_cidr) if self.ipv6_cidr else None

    @property
    def ipv6_prefixlen(self) -> int | None:
        return self.ipv6_network.prefixlen if self.ipv6_cidr else None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.ip_network(self.cidr)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def netmask(self) -> str:
        return str(self.network.netmask)

    @property
    def primary_ip(self) -> str:
        return self.ips[0]


_ORDINALS = ["primary", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def make_eni(index: int, *, n_ips: int = 2, ifname: str | None = None,
             n_ipv6: int = 0) -> Eni:
    """A conventional ENI number ``index`` (>= 1)::

        make_eni(1) == Eni("00:16:3e:00:01:01", "eth1", "10.0.1.0/24", "10.0.1.253",
                           ("10.0.1.10", "10.0.1.11"), "eni-second", "vsw-b")

    ``n_ips`` private IPs starting at .10; ENI ids / vswitch ids match the
    example metadata document (eni-second, vsw-b, ...). ``n_ipv6`` IPv6
    addresses ``2001:db8:<index>::10``, ``::11``... in ``2001:db8:<index>::/64``,
    gateway ``2001:db8:<index>::fffd`` (none by default).
    """
    if not 1 <= index <= 200:
        raise ValueError("index must be in 1..200")
    ipv6 = {}
    if n_ipv6:
        ipv6 = {"ipv6s": tuple(f"2001:db8:{index:x}::{10 + i}" for i in range(n_ipv6)),
                "ipv6_cidr": f"2001:db8:{index:x}::/64",
                "ipv6_gateway": f"2001:db8:{index:x}::fffd"}
    return Eni(
        mac=f"00:16:3e:00:{index:02x}:01",
        ifname=ifname or f"eth{index}",
        cidr=f"10.0.{index}.0/24",
        gateway=f"10.0.{index}.253",
        ips=tuple(f"10.0.{index}.{10 + i}" for i in range(n_ips)),
        eni_id=f"eni-{_ORDINALS[index]}" if index < len(_ORDINALS) else f"eni-{index}",
        vswitch_id=f"vsw-{chr(ord('a') + index)}" if index < 26 else f"vsw-{index}",
        **ipv6,
    )


def primary_eni(*, ipv6: bool = False) -> Eni:
    """The primary NIC: eth0, 00:16:3e:00:00:01, 10.0.0.5 in 10.0.0.0/24, gw .253.
    With ``ipv6``, also 2001:db8::5 in 2001:db8::/64, gateway 2001:db8::fffd."""
    extra = {}
    if ipv6:
        extra = {"ipv6s": ("2001:db8::5",), "ipv6_cidr": "2001:db8::/64",
                 "ipv6_gateway": "2001:db8::fffd"}
    return Eni(PRIMARY_MAC, "eth0", "10.0.0.0/24", "10.0.0.253", ("10.0.0.5",),
               eni_id="eni-primary", vswitch_id="vsw-a", **extra)


# --------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------

class Topology:
    """guest / router / host namespaces; see the module docstring.

    Create with ``Topology.create(enis)`` (or via the ``topology_factory``
    fixture) and use as a context manager to guarantee teardown::

        with Topology.create([make_eni(1)]) as topo:
            topo.guest, topo.router, topo.host   # namespace names
            topo.eni("eth1")                     # the topology's Eni object
    """

    def __init__(self, *, primary: Eni | None = None, guest_rp_filter: int = 0,
                 ipv6: bool = False, guest_sysctls: dict[str, Any] | None = None,
                 vpc_cidr: str = DEFAULT_VPC_CIDR, vpc_id: str = DEFAULT_VPC_ID,
                 ipv6_rpf: bool = True) -> None:
        self.tag = secrets.token_hex(3)
        self.guest = f"{PREFIX}{self.tag}-{os.getpid()}-guest"
        self.router = f"{PREFIX}{self.tag}-{os.getpid()}-router"
        self.host = f"{PREFIX}{self.tag}-{os.getpid()}-host"
        self.primary = copy.deepcopy(primary or primary_eni())
        self.enis: dict[str, Eni] = {}  # attached secondary ENIs by guest ifname
        self.guest_rp_filter = guest_rp_filter
        self.ipv6 = ipv6
        self.ipv6_rpf = ipv6_rpf
        self.host_ipv6 = HOST_IPV6 if ipv6 else None
        self.guest_sysctls = dict(guest_sysctls or {})
        self.vpc_cidr = vpc_cidr
        self.vpc_id = vpc_id
        self.host_ip = HOST_IP
        self._created: list[str] = []
        self._next_router_if = 0

    # -- lifecycle ---------------------------------------------------------

    @classmethod
    def create(cls, enis: Iterable[Eni] = (), **kwargs: Any) -> "Topology":
        """Build a fresh topology with the primary NIC plus ``enis`` attached
        (guest ends DOWN and unconfigured). Keyword args go to ``__init__``:
        ``primary``, ``guest_rp_filter`` (0/1/2, default 0), ``ipv6`` (default
        False: IPv6 disabled everywhere for deterministic state),
        ``guest_sysctls``, ``vpc_cidr``, ``vpc_id``, ``ipv6_rpf`` (with
        ``ipv6``: the router's strict IPv6 reverse-path rules, default True; see
        the module docstring). Partially built
        topologies are destroyed if building fails."""
        topo = cls(**kwargs)
        try:
            topo._build(list(enis))
        except BaseException:
            topo.destroy()
            raise
        return topo

    def __enter__(self) -> "Topology":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

    @property
    def namespaces(self) -> list[str]:
        """Names of this topology's namespaces."""
        return [self.guest, self.router, self.host]

    def destroy(self) -> None:
        """Delete all namespaces of this topology (idempotent)."""
        errors = []
        for name in reversed(self._created):
            try:
                delete_namespace(name)
            except Exception as exc:  # keep deleting the others
                errors.append(exc)
        self._created.clear()
        if errors:
            raise errors[0]

    def _base_sysctls(self) -> dict[str, Any]:
        if self.ipv6:  # no DAD: link-local addresses are final at once
            return {"net.ipv6.conf.all.disable_ipv6": 0, "net.ipv6.conf.default.disable_ipv6": 0,
                    "net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0}
        return {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}

    def _build(self, enis: list[Eni]) -> None:
        for role in ("guest", "router", "host"):
            name = create_namespace(role, self.tag)
            self._created.append(name)
        # New namespaces inherit IPv4 conf from the init namespace: set
        # everything that matters explicitly so results don't depend on the CI host.
        set_sysctls(self.guest, {
            **self._base_sysctls(),
            "net.ipv4.ip_forward": 0,
            "net.ipv4.conf.all.rp_filter": self.guest_rp_filter,
            "net.ipv4.conf.default.rp_filter": self.guest_rp_filter,
            "net.ipv4.conf.all.arp_ignore": 0,
            "net.ipv4.conf.default.arp_ignore": 0,
            "net.ipv4.conf.all.arp_announce": 0,
            "net.ipv4.conf.default.arp_announce": 0,
            **self.guest_sysctls,
        })
        set_sysctls(self.router, {
            **self._base_sysctls(),
            "net.ipv4.ip_forward": 1,
            "net.ipv4.conf.all.rp_filter": 1,
            "net.ipv4.conf.default.rp_filter": 1,
            "net.ipv4.conf.lo.rp_filter": 1,
            **({"net.ipv6.conf.all.forwarding": 1, "net.ipv6.conf.default.forwarding": 1}
               if self.ipv6 else {}),
        })
        set_sysctls(self.host, {
            **self._base_sysctls(),
            "net.ipv4.ip_forward": 0,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
        })

        # router <-> host
        ip(self.router, "link", "add", "rh", "type", "veth", "peer", "name", "eth0",
           "netns", self.host)
        set_sysctls(self.router, {"net.ipv4.conf.rh.rp_filter": 1})
        ip(self.router, "addr", "add", f"{ROUTER_HOST_SIDE_IP}/24", "dev", "rh")
        ip(self.router, "link", "set", "rh", "up")
        ip(self.host, "addr", "add", f"{HOST_IP}/24", "dev", "eth0")
        ip(self.host, "link", "set", "eth0", "up")
        ip(self.host, "route", "add", "default", "via", ROUTER_HOST_SIDE_IP)
        if self.ipv6:
            ip(self.router, "-6", "addr", "add", f"{ROUTER_HOST_SIDE_IPV6}/64", "dev", "rh",
               "nodad")
            ip(self.host, "-6", "addr", "add", f"{HOST_IPV6}/64", "dev", "eth0", "nodad")
            ip(self.host, "-6", "route", "add", "default", "via", ROUTER_HOST_SIDE_IPV6)

        # primary NIC, configured the way the image's DHCP client would
        self._attach(self.primary)
        p = self.primary
        ip(self.guest, "link", "set", p.ifname, "up")
        ip(self.guest, "addr", "add", f"{p.primary_ip}/{p.prefixlen}", "brd", "+",
           "dev", p.ifname)
        ip(self.guest, "route", "add", "default", "via", p.gateway, "dev", p.ifname,
           "proto", "dhcp")
        if self.ipv6 and p.ipv6s:  # as SLAAC / DHCPv6 would
            for addr in p.ipv6s:
                ip(self.guest, "-6", "addr", "add", f"{addr}/{p.ipv6_prefixlen}", "dev",
                   p.ifname, "nodad")
            ip(self.guest, "-6", "route", "add", "default", "via", p.ipv6_gateway, "dev",
               p.ifname, "proto", "ra")

        for eni in enis:
            self.add_eni(eni)

    # -- ENIs --------------------------------------------------------------

    def eni(self, ifname: str) -> Eni:
        """The attached secondary ENI whose guest interface is ``ifname``."""
        return self.enis[ifname]

    def all_enis(self) -> list[Eni]:
        """Primary NIC first, then the attached secondary ENIs."""
        return [self.primary, *self.enis.values()]

    def _attach(self, eni: Eni) -> None:
        rif = f"rv{self._next_router_if}"
        self._next_router_if += 1
        eni.router_ifname = rif
        # Both ends are created in the router; the guest end is moved into
        # the guest only once the router side is ready, so it appears there
        # already named and with its MAC, DOWN and unconfigured.
        queues = ["numtxqueues", eni.queues, "numrxqueues", eni.queues] if eni.queues > 1 else []
        ip(self.router, "link", "add", eni.ifname, "address", eni.mac, *queues, "type", "veth",
           "peer", "name", rif)
        try:
            set_sysctls(self.router, {f"net.ipv4.conf.{rif}.rp_filter": 1})
            ip(self.router, "link", "set", rif, "up")
            ip(self.router, "addr", "add", f"{eni.gateway}/{eni.prefixlen}", "dev", rif,
               "noprefixroute")
            for addr in eni.ips:
                ip(self.router, "route", "add", f"{addr}/32", "dev", rif, "src", eni.gateway)
            if self.ipv6 and eni.ipv6_gateway:
                gw_len = 64 if ipaddress.ip_address(eni.ipv6_gateway).is_link_local \
                    else eni.ipv6_prefixlen
                ip(self.router, "-6", "addr", "add", f"{eni.ipv6_gateway}/{gw_len}",
                   "dev", rif, "nodad", "noprefixroute")
                for addr in eni.ipv6s:
                    self._route_ipv6(eni, addr)
            ip(self.router, "link", "set", eni.ifname, "netns", self.guest)
        except BaseException:
            ip(self.router, "link", "del", rif, check=False)
            raise

    def add_eni(self, eni: Eni) -> Eni:
        """Hotplug: attach ``eni``; its guest end appears in the guest DOWN and
        unconfigured. Returns the topology's own copy of the Eni."""
        if eni.ifname in self.enis or eni.ifname == self.primary.ifname:
            raise ValueError(f"{eni.ifname} already attached")
        eni = copy.deepcopy(eni)
        self._attach(eni)
        self.enis[eni.ifname] = eni
        return eni

    def remove_eni(self, eni: Eni | str) -> Eni:
        """Detach: delete the veth (via its router end, so this works even if
        the guest renamed its interface). Returns the removed Eni."""
        eni = self.enis.pop(eni if isinstance(eni, str) else eni.ifname)
        ip(self.router, "link", "del", eni.router_ifname)
        if self.ipv6:
            for addr in eni.ipv6s:
                self._rpf6_rules("del", eni, addr)
        return eni

    def _route_ipv6(self, eni: Eni, addr: str) -> None:
        """Router: route ``addr``/128 to the ENI's link (+ the strict RPF rules)."""
        ip(self.router, "-6", "route", "add", f"{addr}/128", "dev", eni.router_ifname)
        self._rpf6_rules("add", eni, addr)

    def _rpf6_rules(self, verb: str, eni: Eni, addr: str) -> None:
        if not self.ipv6_rpf:
            return
        ip(self.router, "-6", "rule", verb, "from", f"{addr}/128", "iif", eni.router_ifname,
           "lookup", "main", "priority", RPF6_ACCEPT_PRIORITY, check=verb == "add")
        ip(self.router, "-6", "rule", verb, "from", f"{addr}/128", "blackhole",
           "priority", RPF6_DROP_PRIORITY, check=verb == "add")

    def assign_private_ip(self, eni: Eni | str, addr: str) -> Eni:
        """Cloud-side AssignPrivateIpAddresses: the router starts routing
        ``addr`` to the ENI (the guest is not touched). An IPv6 ``addr``
        (AssignIpv6Addresses) needs ``ipv6=True`` and an ENI with IPv6."""
        eni = self._lookup(eni)
        if ipaddress.ip_address(addr).version == 6:  # AssignIpv6Addresses
            if not (self.ipv6 and eni.ipv6_cidr) or ipaddress.ip_address(addr) not in \
                    eni.ipv6_network:
                raise ValueError(f"{addr} is not in {eni.ipv6_cidr}")
            self._route_ipv6(eni, addr)
            eni.ipv6s = (*eni.ipv6s, addr)
            return eni
        if ipaddress.ip_address(addr) not in eni.network:
            raise ValueError(f"{addr} is not in {eni.cidr}")
        ip(self.router, "route", "add", f"{addr}/32", "dev", eni.router_ifname,
           "src", eni.gateway)
        eni.ips = (*eni.ips, addr)
        return eni

    def route_havip(self, eni: Eni | str, addr: str) -> None:
        """The VPC routes a HaVip (a floating IP of the vswitch, never in the
        metadata's private IPs) to the ENI of the VRRP master: the router
        routes ``addr``/32 to ``eni``'s link, replacing where it went before."""
        eni = self._lookup(eni)
        if ipaddress.ip_address(addr).version == 6:
            ip(self.router, "-6", "route", "del", f"{addr}/128", check=False)
            self._route_ipv6(eni, addr)
            return
        ip(self.router, "route", "replace", f"{addr}/32", "dev", eni.router_ifname,
           "src", eni.gateway)

    def unassign_private_ip(self, eni: Eni | str, addr: str) -> Eni:
        """Cloud-side UnassignPrivateIpAddresses: the router stops routing ``addr``."""
        eni = self._lookup(eni)
        if ipaddress.ip_address(addr).version == 6:  # UnassignIpv6Addresses
            ip(self.router, "-6", "route", "del", f"{addr}/128", "dev", eni.router_ifname)
            self._rpf6_rules("del", eni, addr)
            eni.ipv6s = tuple(a for a in eni.ipv6s if a != addr)
            return eni
        ip(self.router, "route", "del", f"{addr}/32", "dev", eni.router_ifname)
        eni.ips = tuple(a for a in eni.ips if a != addr)
        return eni

    def _lookup(self, eni: Eni | str) -> Eni:
        name = eni if isinstance(eni, str) else eni.ifname
        return self.primary if name == self.primary.ifname else self.enis[name]

    def set_router_rp_filter(self, value: int) -> None:
        """Change rp_filter on all router interfaces (for control experiments)."""
        ifs = ["all", "default", "lo", "rh", *(e.router_ifname for e in self.all_enis())]
        set_sysctls(self.router, {f"net.ipv4.conf.{i}.rp_filter": value for i in ifs})

    def __repr__(self) -> str:
        return f"<Topology {self.tag} enis={list(self.enis)}>"


# --------------------------------------------------------------------------
# Guest-side helpers (manual configuration, state snapshots, lookups)
# --------------------------------------------------------------------------

def link_by_mac(ns: str, mac: str) -> dict | None:
    """The ``ip -j link`` entry with MAC ``mac`` in ``ns``, or None."""
    for link in ip_json(ns, "link", "show"):
        if link.get("address", "").lower() == mac.lower():
            return link
    return None


def configure_address_only(topo: Topology, eni: Eni | str) -> None:
    """The naive configuration the product replaces: bring the ENI up and add
    its addresses (with kernel prefix routes), WITHOUT policy routing."""
    eni = topo._lookup(eni)
    ip(topo.guest, "link", "set", eni.ifname, "up")
    for addr in eni.ips:
        ip(topo.guest, "addr", "add", f"{addr}/{eni.prefixlen}", "dev", eni.ifname)


def configure_policy_routing_by_hand(topo: Topology, eni: Eni | str, table: int, *,
                                     priority: int = 10000) -> None:
    """Configure source-based policy routing for ``eni`` by hand (what the
    agent is expected to do), to prove the harness::

        ip link set ethX up
        ip addr add IP/PLEN dev ethX noprefixroute          # every private IP
        ip route add CIDR dev ethX src PRIMARY_IP table T
        ip route add default via GW dev ethX onlink table T
        ip rule add from IP lookup T priority 10000          # every private IP
    """
    eni = topo._lookup(eni)
    g = topo.guest
    ip(g, "link", "set", eni.ifname, "up")
    for addr in eni.ips:
        ip(g, "addr", "add", f"{addr}/{eni.prefixlen}", "dev", eni.ifname, "noprefixroute")
    ip(g, "route", "add", eni.cidr, "dev", eni.ifname, "src", eni.primary_ip,
       "table", table)
    ip(g, "route", "add", "default", "via", eni.gateway, "dev", eni.ifname, "onlink",
       "table", table)
    for addr in eni.ips:
        ip(g, "rule", "add", "from", addr, "lookup", table, "priority", priority)


# Fields that change without anybody touching the configuration.
_VOLATILE_ADDR_KEYS = {"valid_life_time", "preferred_life_time", "tentative", "dadfailed"}
_VOLATILE_ROUTE_KEYS = {"expires", "cacheinfo"}
_LINK_KEYS = ("ifname", "link_type", "address", "flags", "mtu", "master")


def _strip(entries: list[dict], volatile: set[str]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in volatile} for e in entries]


def _sorted_routes(routes: list[dict]) -> list[dict]:
    # Dump order of routes is not meaningful (it follows table-hash order);
    # group by table for readable diffs, then make the order total.
    return sorted(routes, key=lambda r: (str(r.get("table", "main")), str(r.get("dst")),
                                         json.dumps(r, sort_keys=True)))


def namespace_state(ns: str, *, ipv6: bool = False) -> dict[str, list[dict]]:
    """Normalized snapshot of ``ns``: links, addresses, rules, routes of all
    tables (IPv4; IPv6 too if ``ipv6``), from ``ip -j``.

    Volatile fields (address lifetimes, DAD flags, route expiry/cache info,
    ifindex, operstate) are dropped. Links are sorted by name; addresses keep
    kernel order per interface (primary/secondary order is meaningful); rules
    keep kernel order (= evaluation order); routes are sorted. Two snapshots
    compare equal iff the configuration is unchanged.
    """
    families = ["-4", "-6"] if ipv6 else ["-4"]
    links, addrs = [], []
    for link in sorted(ip_json(ns, "addr", "show"), key=lambda e: e["ifname"]):
        links.append({k: link[k] for k in _LINK_KEYS if k in link})
        for a in link.get("addr_info", []):
            if ipv6 or a.get("family") == "inet":
                addrs.append({"ifname": link["ifname"],
                              **{k: v for k, v in a.items() if k not in _VOLATILE_ADDR_KEYS}})
    rules, routes = [], []
    for fam in families:
        rules += _strip(ip_json(ns, fam, "rule", "show"), _VOLATILE_ROUTE_KEYS)
        routes += _strip(ip_json(ns, fam, "route", "show", "table", "all"),
                         _VOLATILE_ROUTE_KEYS)
    return {"links": links, "addresses": addrs, "rules": rules, "routes": _sorted_routes(routes)}


def guest_state(topo: Topology) -> dict[str, list[dict]]:
    """:func:`namespace_state` of the guest: assert ``guest_state(t) == before``
    to check that kernel state is unchanged."""
    return namespace_state(topo.guest, ipv6=topo.ipv6)


# --------------------------------------------------------------------------
# Metadata documents
# --------------------------------------------------------------------------

def eni_metadata(eni: Eni, *, vpc_cidr: str = DEFAULT_VPC_CIDR,
                 vpc_id: str = DEFAULT_VPC_ID) -> dict[str, Any]:
    """The ECS metadata entry (``network/interfaces/macs/<mac>``) for one ENI."""
    return {
        "network-interface-id": eni.eni_id or f"eni-{eni.mac.replace(':', '')}",
        "primary-ip-address": eni.primary_ip,
        "private-ipv4s": list(eni.ips),
        "netmask": eni.netmask,
        "gateway": eni.gateway,
        "vswitch-cidr-block": eni.cidr,
        "vpc-cidr-block": vpc_cidr,
        "vswitch-id": eni.vswitch_id or f"vsw-{eni.network.network_address}".replace(".", "-"),
        "vpc-id": vpc_id,
        # IPv6 fields only for an ENI in an IPv6 vswitch; ipv6s only if it has some
        **({"ipv6-gateway": eni.ipv6_gateway, "vswitch-ipv6-cidr-block": eni.ipv6_cidr}
           if eni.ipv6_cidr else {}),
        **({"ipv6s": list(eni.ipv6s)} if eni.ipv6s else {}),
    }


def build_metadata(topo: Topology, enis: Iterable[Eni] | None = None) -> dict[str, Any]:
    """ECS-layout metadata document for the topology's primary NIC and its
    currently attached ENIs (or for the primary plus ``enis`` if given)::

        {"mac": PRIMARY_MAC, "network": {"interfaces": {"macs": {MAC: {...}}}}}

    The result is a fresh dict: tweak it freely before writing it.
    """
    selected = list(topo.enis.values()) if enis is None else list(enis)
    macs = {e.mac: eni_metadata(e, vpc_cidr=topo.vpc_cidr, vpc_id=topo.vpc_id)
            for e in [topo.primary, *selected]}
    return {"mac": topo.primary.mac, "network": {"interfaces": {"macs": macs}}}


def write_metadata(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``doc`` as JSON to ``path`` with mode 0600; returns the Path."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # also if the file already existed
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return path
