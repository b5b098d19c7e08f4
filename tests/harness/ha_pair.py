"""Two guests whose ENIs share one vswitch, for the HaVip + keepalived
tests (issue 16 §2).

Built on a :class:`~tests.harness.topology.Topology` (guest A, router,
host): A's ENI link at the router is moved into a bridge ``br1`` that holds
the vswitch gateway, and a second guest B is attached (its primary ``eth0``
like A's, its ENI ``eth1`` on the same bridge). The router reaches the
vswitch by ARP on ``br1``, so gratuitous ARP from the VRRP master moves the
VIP to it (the VPC's SDN does that for a HaVip; ``arp_accept`` is on at the
router for it). keepalived runs in the foreground in a guest namespace with
its own config and pid files in the test's directory, and is always killed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

from .commands import ip, set_sysctls
from .enis import DEFAULT_VPC_CIDR, Eni
from .metadata import eni_metadata
from .namespaces import create_namespace
from .topology import Topology

B_PRIMARY = Eni("00:16:3e:00:00:02", "eth0", "10.0.0.0/24", "10.0.0.253", ("10.0.0.6",),
                "eni-primary-b", "vsw-a")
B_ENI = Eni("00:16:3e:00:01:02", "eth1", "10.0.1.0/24", "10.0.1.253", ("10.0.1.20",),
            "eni-second-b", "vsw-b")


@dataclasses.dataclass
class Guest:
    """What the harness helpers (Agent, run_daemon, owned_rules) read of a
    topology: the guest namespace."""
    guest: str
    tag: str
    primary: Eni
    eni: Eni

    def metadata(self) -> dict:
        macs = {e.mac: eni_metadata(e, vpc_cidr=DEFAULT_VPC_CIDR) for e in (self.primary,
                                                                             self.eni)}
        return {"mac": self.primary.mac, "network": {"interfaces": {"macs": macs}}}


def share_vswitch(t: Topology, ifname: str = "eth1") -> Guest:
    """Put A's ENI ``ifname`` on a bridge at the router, attach guest B
    (primary 10.0.0.6, ENI 10.0.1.20 on the same bridge); returns B."""
    a = t.eni(ifname)
    r = t.router
    ip(r, "addr", "del", f"{a.gateway}/{a.prefixlen}", "dev", a.router_ifname)
    for addr in a.ips:
        # (gone with the address they took their source from, on most kernels)
        ip(r, "route", "del", f"{addr}/32", "dev", a.router_ifname, check=False)
    ip(r, "link", "add", "br1", "type", "bridge")
    set_sysctls(r, {"net.ipv4.conf.br1.rp_filter": 1, "net.ipv4.conf.br1.arp_accept": 1})
    ip(r, "link", "set", a.router_ifname, "master", "br1")
    ip(r, "addr", "add", f"{a.gateway}/{a.prefixlen}", "dev", "br1")
    ip(r, "link", "set", "br1", "up")

    b = create_namespace("guestb", t.tag)
    t._created.append(b)  # torn down with the topology
    set_sysctls(b, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1,
                    "net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.default.rp_filter": 0})
    ip(b, "link", "set", "lo", "up")
    # B's primary: like A's, its own link at the router
    ip(r, "link", "add", "xb0", "address", B_PRIMARY.mac, "type", "veth", "peer", "name", "rvb0")
    set_sysctls(r, {"net.ipv4.conf.rvb0.rp_filter": 1})
    ip(r, "addr", "add", f"{B_PRIMARY.gateway}/24", "dev", "rvb0", "noprefixroute")
    ip(r, "link", "set", "rvb0", "up")
    ip(r, "route", "add", f"{B_PRIMARY.primary_ip}/32", "dev", "rvb0", "src", B_PRIMARY.gateway)
    ip(r, "link", "set", "xb0", "netns", b)
    ip(b, "link", "set", "xb0", "name", "eth0")
    ip(b, "link", "set", "eth0", "up")
    ip(b, "addr", "add", f"{B_PRIMARY.primary_ip}/24", "dev", "eth0")
    ip(b, "route", "add", "default", "via", B_PRIMARY.gateway, "proto", "dhcp")
    # B's ENI: on the shared vswitch's bridge, DOWN and unconfigured like A's was
    ip(r, "link", "add", "xb1", "address", B_ENI.mac, "type", "veth", "peer", "name", "rvb1")
    ip(r, "link", "set", "rvb1", "master", "br1")
    ip(r, "link", "set", "rvb1", "up")
    ip(r, "link", "set", "xb1", "netns", b)
    ip(b, "link", "set", "xb1", "name", "eth1")
    return Guest(b, t.tag, B_PRIMARY, B_ENI)


def keepalived_config(name: str, priority: int, src: str, peer: str, vip: str,
                      interface: str = "eth1") -> str:
    """VRRPv3, unicast over the ENIs, adverts every 100 ms (a backup takes
    over ~0.35 s after the last one), the VIP as a /32 on the ENI."""
    return f"""global_defs {{
    router_id {name}
    vrrp_version 3
    vrrp_garp_master_delay 1
    vrrp_garp_master_repeat 3
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {interface}
    virtual_router_id 51
    priority {priority}
    advert_int 0.1
    unicast_src_ip {src}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}/32 dev {interface}
    }}
}}
"""


class Keepalived:
    """keepalived in the foreground in namespace ``ns`` (VRRP only)."""

    def __init__(self, ns: str, workdir: Path, config: str):
        self.ns = ns
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(config)
        self.log = self.dir / "keepalived.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["ip", "netns", "exec", self.ns, "keepalived", "--dont-fork", "--vrrp",
                "--log-console", "--log-detail", "--use-file", str(self.conf),
                "--pid", str(self.dir / "keepalived.pid"),
                "--vrrp_pid", str(self.dir / "vrrp.pid"),
                "--checkers_pid", str(self.dir / "checkers.pid")]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (keepalived gives the VIP up and tells the peer), then SIGKILL."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        self.proc = None


@contextlib.contextmanager
def keepalived(ns: str, workdir: Path, config: str) -> Iterator[Keepalived]:
    k = Keepalived(ns, workdir, config)
    k.start()
    try:
        yield k
    finally:
        k.stop()
