"""eni-agent benchmark: run as root, `python benchmarks/run.py [--quick]`.

Builds throwaway network namespaces (a guest with N veth ENIs x M IPs each, a
router with strict rp_filter, a host behind it) and prints medians of several
runs, side by side with the floor: `ip -batch` applying the same netlink
changes in one process.

  sync (cold)        whole `eni-agent sync` process, nothing configured yet
  sync (idempotent)  whole process, already converged
  ip -batch          link up, addresses, two routes per table, one rule per address
  py floor           benchmarks/floor.py: CPython starts, reads the document and sends
                     the same requests, encoded by pyroute2 and batched; no validation,
                     observing or verifying. What any agent on this stack pays, at least.
  stack floor        a process that only imports pyroute2, pydantic (BaseModel) and click:
                     the fixed cost of the specified stack, paid once per process.
  --help             whole process
  daemon             hotplug -> a TCP handshake through the new ENI succeeds;
                     failover against the metadata stand-in (benchmarks/failover.py);
                     a rule deleted -> the rule is back; an address others add to
                     an ENI (keepalived's VIP) -> its followed rule; RSS and CPU at rest
  big main           100,000 foreign routes in main (a BGP speaker), 32 ENIs x 20 IPs:
                     sync cold and idempotent, the daemon's RSS and CPU at rest over
                     one default resync period, each beside the same without them

Latencies are timed in this process from the kernel's own netlink
notifications (setns into the guest namespace), not by polling `ip`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from pyroute2 import IPRSocket  # noqa: E402  (the benchmark reads notifications too)
from pyroute2.netlink.rtnl import (RTM_DELRULE, RTM_NEWADDR, RTM_NEWLINK,  # noqa: E402
                                   RTM_NEWRULE)

PY = sys.executable
AGENT = [PY, "-m", "eni_agent"]  # replaced by an installed copy in main(), unless --editable
AGENT_ENV: dict[str, str] = {}
PREFIX = f"eni-bench-{os.getpid()}"
G, R, H = f"{PREFIX}-g", f"{PREFIX}-r", f"{PREFIX}-h"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


def ip(ns: str, *args: str) -> None:
    sh("ip", "-n", ns, *args)


def mac(i: int) -> str:
    return f"00:16:3e:{i >> 8 & 0xff:02x}:{i & 0xff:02x}:01"


def eni_ips(i: int, m: int) -> list[str]:
    return [f"10.{i}.{j // 250}.{j % 250 + 1}" for j in range(m)]


# -- topology ---------------------------------------------------------------------


def build(n: int, m: int, attach: bool = True) -> None:
    destroy()
    for ns in (G, R, H):
        sh("ip", "netns", "add", ns)
        ip(ns, "link", "set", "lo", "up")
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=1",
                "net.ipv4.conf.default.rp_filter=1"):
        sh("ip", "netns", "exec", R, "sysctl", "-qw", key)
    sh("ip", "-n", R, "link", "add", "rh", "type", "veth", "peer", "name", "eth0", "netns", H)
    ip(R, "addr", "add", "192.168.100.1/24", "dev", "rh")
    ip(R, "link", "set", "rh", "up")
    ip(H, "addr", "add", "192.168.100.2/24", "dev", "eth0")
    ip(H, "link", "set", "eth0", "up")
    ip(H, "route", "add", "default", "via", "192.168.100.1")
    sh("ip", "-n", R, "link", "add", "r0", "type", "veth", "peer", "name", "eth0", "netns", G,
       "address", "00:16:3e:00:00:01")
    ip(R, "addr", "add", "10.0.0.253/24", "dev", "r0")
    ip(R, "link", "set", "r0", "up")
    ip(G, "addr", "add", "10.0.0.5/24", "dev", "eth0")
    ip(G, "link", "set", "eth0", "up")
    ip(G, "route", "add", "default", "via", "10.0.0.253")
    if attach:
        for i in range(1, n + 1):
            attach_eni(i, m)


def attach_eni(i: int, m: int) -> None:
    """Router side first (gateway, a /32 per address), then the guest end moves in."""
    ip(R, "link", "add", f"r{i}", "type", "veth", "peer", "name", f"eth{i}",
       "address", mac(i))
    ip(R, "addr", "add", f"10.{i}.255.253/16", "dev", f"r{i}", "noprefixroute")
    # A VPC's vswitch knows every binding; a Linux router ARPs, and after a
    # failed probe (the address not there yet) retries only every second.
    # Retry every 5 ms so the router measures the agent, not its ARP timer.
    sh("ip", "netns", "exec", R, "sysctl", "-qw", f"net.ipv4.neigh.r{i}.retrans_time_ms=5",
       f"net.ipv4.neigh.r{i}.mcast_solicit=100")
    ip(R, "link", "set", f"r{i}", "up")
    batch = "".join(f"route add {a}/32 dev r{i}\n" for a in eni_ips(i, m))
    subprocess.run(["ip", "-n", R, "-batch", "-"], input=batch, text=True, check=True)
    ip(R, "link", "set", f"eth{i}", "netns", G)


def destroy() -> None:
    for ns in (G, R, H):
        sh("ip", "netns", "del", ns, check=False)


def document(n: int, m: int, path: Path) -> Path:
    macs = {"00:16:3e:00:00:01": {"primary-ip-address": "10.0.0.5", "gateway": "10.0.0.253",
                                  "vswitch-cidr-block": "10.0.0.0/24"}}
    for i in range(1, n + 1):
        ips = eni_ips(i, m)
        macs[mac(i)] = {"network-interface-id": f"eni-{i}", "primary-ip-address": ips[0],
                        "private-ipv4s": ips, "gateway": f"10.{i}.255.253",
                        "vswitch-cidr-block": f"10.{i}.0.0/16"}
    path.write_text(json.dumps({"mac": "00:16:3e:00:00:01",
                                "network": {"interfaces": {"macs": macs}}}))
    path.chmod(0o600)
    return path


def ip_batch_script(n: int, m: int) -> str:
    """The same kernel changes eni-agent makes (iproute2 6.1 cannot mark addresses)."""
    lines = []
    for i in range(1, n + 1):
        table = 20000 + i
        lines.append(f"link set eth{i} up")
        lines += [f"addr add {a}/16 dev eth{i} noprefixroute" for a in eni_ips(i, m)]
        lines.append(f"route add 10.{i}.0.0/16 dev eth{i} table {table} proto 234")
        lines.append(f"route add default via 10.{i}.255.253 dev eth{i} table {table} "
                     "proto 234 onlink")
        lines += [f"rule add from {a} lookup {table} priority 10000 proto 234"
                  for a in eni_ips(i, m)]
    return "\n".join(lines) + "\n"


def reset_guest() -> None:
    """Remove all ENI configuration from the guest (whoever made it)."""
    for family in ("-4", "-6"):
        rules = json.loads(sh("ip", "-n", G, family, "-j", "rule").stdout)
        count = sum(1 for rule in rules if rule.get("priority") == 10000)
        if count:
            subprocess.run(["ip", "-n", G, family, "-batch", "-"], text=True, check=False,
                           input="rule del priority 10000\n" * count, capture_output=True)
    sh("ip", "-n", G, "route", "flush", "table", "all", "proto", "234", check=False)
    links = json.loads(sh("ip", "-n", G, "-j", "link").stdout)
    for link in links:
        if link["ifname"].startswith("eth") and link["ifname"] != "eth0":
            sh("ip", "-n", G, "addr", "flush", "dev", link["ifname"], check=False)
            sh("ip", "-n", G, "link", "set", link["ifname"], "down", check=False)


# -- timing -------------------------------------------------------------------------


def timed(argv: list[str], stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, cwd=REPO,
                   env={**os.environ, **AGENT_ENV})
    return time.perf_counter() - start


def install_agent(workdir: Path) -> list[str]:
    """eni-agent as operators run it: a wheel of this checkout in a venv of its
    own (scripts/install.sh does the same), bytecode compiled at install."""
    venv = workdir / "venv"
    subprocess.run([PY, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(REPO)], check=True, capture_output=True)
    return [str(venv / "bin" / "eni-agent")]


def in_guest(argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", G, *argv]


STACK_FLOOR = "import pyroute2, click; from pydantic import BaseModel"

# The engine alone, in a process whose imports are done: read the document,
# observe, plan, apply, verify. Whole-process time minus this is start-up.
ENGINE = """
import json, sys, time
from eni_agent.config import load_config
from eni_agent.engine import reconcile
from eni_agent.netlink import Netlink
from eni_agent.sources import load_metadata
config = load_config(None, {"metadata": sys.argv[1]})
times = []
for _ in range(2):
    start = time.perf_counter()
    with Netlink(config.protocol) as nl:
        reconcile(nl, load_metadata(config.metadata), config)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def measure_sync(n: int, m: int, runs: int, doc: Path) -> dict[str, float]:
    cold, idem, batch, floor, engine_cold, engine_idem = [], [], [], [], [], []
    script = ip_batch_script(n, m)
    python = str(Path(AGENT[0]).with_name("python")) if len(AGENT) == 1 else PY
    names = ",".join(f"eth{i}" for i in range(1, n + 1))
    for _ in range(runs):
        reset_guest()
        batch.append(timed(["ip", "-n", G, "-batch", "-"], script))
        reset_guest()
        floor.append(timed(in_guest([python, str(REPO / "benchmarks" / "floor.py"), str(doc),
                                     names])))
        reset_guest()
        cold.append(timed(in_guest([*AGENT, "sync", "--metadata", str(doc)])))
        idem.append(timed(in_guest([*AGENT, "sync", "--metadata", str(doc)])))
        reset_guest()
        out = subprocess.run(in_guest([python, "-c", ENGINE, str(doc)]), check=True,
                             capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, **AGENT_ENV}).stdout
        first, second = json.loads(out)
        engine_cold.append(first)
        engine_idem.append(second)
    return {"ip_batch": statistics.median(batch), "floor": statistics.median(floor),
            "cold": statistics.median(cold),
            "idempotent": statistics.median(idem), "engine_cold": statistics.median(engine_cold),
            "engine_idempotent": statistics.median(engine_idem)}


def ns_fd(name: str) -> int:
    return os.open(f"/run/netns/{name}", os.O_RDONLY)


class InNamespace:
    """Run this thread in another network namespace, then come back."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = ns_fd(self.name)
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)

    def __exit__(self, *exc):
        _libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)


def event_socket(groups: int) -> IPRSocket:
    sock = IPRSocket(groups=groups)
    sock.bind(groups=groups)
    return sock


def wait_event(sock: IPRSocket, predicate, timeout: float) -> float | None:
    """perf_counter() when a notification satisfying predicate(msg) arrives
    (decoded by pyroute2; the arrival time is taken before decoding)."""
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        if not select.select([sock], [], [], left)[0]:
            return None
        now = time.perf_counter()
        if any(predicate(msg) for msg in sock.get()):
            return now


def address_then_rule(sock: IPRSocket, address: str, timeout: float) -> tuple:
    """(perf_counter() of the address's RTM_NEWADDR, of the RTM_NEWRULE from it)."""
    appeared = ruled = None
    deadline = time.perf_counter() + timeout
    while appeared is None or ruled is None:
        left = deadline - time.perf_counter()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        now = time.perf_counter()
        for msg in sock.get():
            kind = msg["header"]["type"]
            if kind == RTM_NEWADDR and msg.get("IFA_LOCAL") == address and appeared is None:
                appeared = now
            elif kind == RTM_NEWRULE and msg.get("FRA_SRC") == address and ruled is None:
                ruled = now
    return appeared, ruled


def handshake_until(dst: str, port: int, deadline: float) -> float | None:
    """Keep trying a TCP handshake from the host namespace; time of the first success."""
    with InNamespace(H):
        while time.perf_counter() < deadline:
            s = socket.socket()
            s.settimeout(0.01)
            try:
                s.connect((dst, port))
                return time.perf_counter()
            except OSError:
                time.sleep(0.0005)
            finally:
                s.close()
    return None


def daemon_figures(n: int, m: int, runs: int, workdir: Path) -> dict[str, object]:
    """Start a daemon with n ENIs configured, then measure hotplug, drift, RSS, CPU."""
    build(n, m)
    doc = document(n + runs, m, workdir / "daemon.json")  # lists the ENIs to hot-plug too
    notify = workdir / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    env = {**os.environ, **AGENT_ENV, "NOTIFY_SOCKET": str(notify)}
    proc = subprocess.Popen(in_guest([*AGENT, "daemon", "--metadata", str(doc),
                                      "--resync-interval", "3600", "--log-level", "warning"]),
                            env=env, cwd=REPO, stderr=open(workdir / "daemon.log", "w"), text=True)
    try:
        listener.settimeout(60)
        while b"READY=1" not in listener.recv(4096):
            pass
        threading.Thread(target=_drain, args=(listener,), daemon=True).start()
        pid = _python_pid(proc.pid)
        # Right after READY the daemon may still be reading the notifications
        # of its start-up; "at rest" starts once its CPU time stops moving.
        ready_at, last = time.perf_counter(), _cpu_seconds(pid)
        while time.perf_counter() - ready_at < 30:
            time.sleep(0.5)
            now = _cpu_seconds(pid)
            if now - last < 0.005:
                break
            last = now
        settle = time.perf_counter() - ready_at
        rss_mb = _rss_kb(pid) / 1024
        cpu0 = _cpu_seconds(pid)
        time.sleep(5.0)
        cpu_rest = _cpu_seconds(pid) - cpu0

        # A listener on every address in the guest: any port 7000 SYN is answered
        # once the address is there and its reply is routed out the right NIC.
        server = threading.Thread(target=_serve, args=(7000,), daemon=True)
        server.start()
        time.sleep(0.2)
        hotplug = []
        for k in range(runs):
            i = n + 1 + k
            with InNamespace(G):
                events = event_socket(1)  # RTMGRP_LINK
            attach_eni(i, m)
            appeared = wait_event(events, lambda msg: msg["header"]["type"] == RTM_NEWLINK
                                  and msg.get("IFLA_ADDRESS") == mac(i), 5)
            events.close()
            reachable = handshake_until(eni_ips(i, m)[0], 7000, time.perf_counter() + 10)
            if appeared and reachable:
                hotplug.append(reachable - appeared)

        drift = []
        victim = eni_ips(1, m)[-1]
        for _ in range(runs * 2):
            with InNamespace(G):
                events = event_socket(0x80)  # RTMGRP_IPV4_RULE
            start = time.perf_counter()
            sh("ip", "-n", G, "rule", "del", "from", victim, "priority", "10000")
            back = wait_event(events, lambda msg: msg["header"]["type"] == RTM_NEWRULE
                              and msg.get("FRA_SRC") == victim, 5)
            events.close()
            if back:
                drift.append(back - start)
            time.sleep(0.2)

        followed = []
        vip = "10.1.200.100"  # in ENI 1's vswitch, not one of its IPs: a HaVip
        for _ in range(runs * 2):
            with InNamespace(G):
                events = event_socket(0x10 | 0x80)  # RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_RULE
            # Read while `ip` runs: read after it, the address's notification
            # (and often the rule's) waited in the socket, timed late or at 0.
            adding = subprocess.Popen(["ip", "-n", G, "addr", "add", f"{vip}/32", "dev", "eth1"])
            appeared, ruled = address_then_rule(events, vip, 5)
            if adding.wait() != 0:
                raise RuntimeError(f"ip addr add {vip} failed")
            if appeared and ruled:
                followed.append(ruled - appeared)
            ip(G, "addr", "del", f"{vip}/32", "dev", "eth1")
            # the rule goes with the address; the next run starts once it has
            wait_event(events, lambda msg: msg["header"]["type"] == RTM_DELRULE
                       and msg.get("FRA_SRC") == vip, 5)
            events.close()
            time.sleep(0.1)
        return {"rss_mb": rss_mb, "cpu_rest_s": cpu_rest, "settle_s": settle, "hotplug": hotplug,
                "drift": drift, "followed": followed}
    finally:
        _stop(proc)
        listener.close()


def add_foreign_routes(count: int) -> None:
    """`count` /24 routes in the guest's main via the primary's gateway, as a
    BGP speaker's (proto bgp), in one `ip -batch`."""
    batch = "".join(f"route add {20 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24 "
                    f"via 10.0.0.253 proto bgp\n" for i in range(count))
    subprocess.run(["ip", "-n", G, "-batch", "-"], input=batch, text=True, check=True)


def daemon_at_rest(doc: Path, workdir: Path, window: float) -> dict[str, float]:
    """A daemon with its default resync period: RSS once quiet after READY,
    and CPU over `window` seconds (long enough to hold one periodic resync)."""
    notify = workdir / "notify-rest.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    env = {**os.environ, **AGENT_ENV, "NOTIFY_SOCKET": str(notify)}
    proc = subprocess.Popen(in_guest([*AGENT, "daemon", "--metadata", str(doc),
                                      "--log-level", "warning"]),
                            env=env, cwd=REPO, stderr=open(workdir / "daemon-rest.log", "w"),
                            text=True)
    try:
        listener.settimeout(120)
        start = time.perf_counter()
        while b"READY=1" not in listener.recv(4096):
            pass
        ready_s = time.perf_counter() - start
        threading.Thread(target=_drain, args=(listener,), daemon=True).start()
        pid = _python_pid(proc.pid)
        last = _cpu_seconds(pid)
        for _ in range(60):
            time.sleep(0.5)
            now = _cpu_seconds(pid)
            if now - last < 0.005:
                break
            last = now
        rss_mb = _rss_kb(pid) / 1024
        cpu0 = _cpu_seconds(pid)
        time.sleep(window)
        return {"rss_mb": rss_mb, "cpu_percent": (_cpu_seconds(pid) - cpu0) / window * 100,
                "ready_s": ready_s}
    finally:
        _stop(proc)
        listener.close()
        notify.unlink(missing_ok=True)


def big_main_figures(n: int, m: int, routes: int, runs: int, workdir: Path,
                     window: float) -> dict[str, dict[str, float]]:
    """Sync and the daemon at rest, without and then with `routes` foreign
    routes in main."""
    build(n, m)
    doc = document(n, m, workdir / f"big-{n}x{m}.json")
    figures: dict[str, dict[str, float]] = {}
    for label in ("without", "with"):
        if label == "with":
            add_foreign_routes(routes)
        cold, idem = [], []
        for _ in range(runs):
            reset_guest()
            cold.append(timed(in_guest([*AGENT, "sync", "--metadata", str(doc)])))
            idem.append(timed(in_guest([*AGENT, "sync", "--metadata", str(doc)])))
        rest = daemon_at_rest(doc, workdir, window)
        figures[label] = {"cold": statistics.median(cold), "idempotent": statistics.median(idem),
                          **rest}
    return figures


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the daemon; kill it if it has not exited within 10 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _drain(sock: socket.socket) -> None:
    """Keep reading STATUS= updates, as systemd would."""
    sock.settimeout(None)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        return


def _serve(port: int) -> None:
    with InNamespace(G):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(128)
    while True:
        conn, _ = srv.accept()
        conn.close()


def _python_pid(pid: int) -> int:
    """`ip netns exec` execs the command, but check for a child just in case."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else pid


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- report -------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def print_daemon_figures(d: dict) -> dict:
    hot, drift, followed = d["hotplug"], d["drift"], d["followed"]
    print("\ndaemon, 32 ENIs x 20 IPs configured")
    print(f"  hotplug -> reachable (TCP handshake through the new ENI): median "
          f"{ms(statistics.median(hot)) if hot else 'n/a'} over {len(hot)} "
          f"(min {ms(min(hot)) if hot else '-'}, max {ms(max(hot)) if hot else '-'})")
    print(f"  drift -> repaired (a rule deleted -> back):                median "
          f"{ms(statistics.median(drift)) if drift else 'n/a'} over {len(drift)}")
    print(f"  address added (a VIP) -> its followed rule:               median "
          f"{ms(statistics.median(followed)) if followed else 'n/a'} over {len(followed)}")
    print(f"  RSS at rest: {d['rss_mb']:.1f} MB;  CPU at rest: {d['cpu_rest_s']:.3f} s "
          f"over 5 s (quiet {d['settle_s']:.1f} s after READY)")
    return d


def daemon_goals(d: dict) -> list[tuple]:
    """(name, value, goal, met) of the daemon's rows in the goals table."""
    rows = []
    for name, key in (("hotplug -> reachable", "hotplug"), ("drift -> repaired", "drift"),
                      ("VIP -> followed rule", "followed")):
        values = d[key]
        median = statistics.median(values) if values else None
        rows.append((name, ms(median).strip() if values else "n/a", "<= 50 ms",
                     median is not None and median <= 0.050))
    return rows + [
        ("RSS at rest", f"{d['rss_mb']:.1f} MB", "<= 60 MB", d["rss_mb"] <= 60),
        ("CPU at rest (5 s)", f"{d['cpu_rest_s']:.3f} s", "~0", d["cpu_rest_s"] < 0.02)]


def print_goal(name: str, value: str, goal: str, ok: bool) -> None:
    verdict = ("met" if ok else "NOT met") if goal else "(for reference)"
    print(f"  {name:<24} {value:>28}   {'goal ' + goal if goal else '':<22} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="fewer runs and sizes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--editable", action="store_true",
                        help="run the checkout with this interpreter instead of an installed copy")
    parser.add_argument("--routes", type=int, default=100_000,
                        help="foreign routes in main for the big-main rows (default 100,000)")
    parser.add_argument("--big-main-only", action="store_true",
                        help="only the big-main rows")
    parser.add_argument("--daemon-only", action="store_true",
                        help="only the daemon rows at 32 x 20 (hotplug, drift, VIP -> followed "
                             "rule, RSS and CPU at rest): about a minute")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/run.py: run as root (it builds network namespaces)")
    runs = 3 if args.quick else args.runs
    sizes = [(1, 1), (8, 10), (32, 20)] if args.quick else [
        (1, 1), (4, 5), (8, 10), (16, 20), (32, 20), (32, 50)]
    workdir = Path(tempfile.mkdtemp(prefix="eni-bench-"))
    results: dict[str, object] = {"runs": runs}
    global AGENT
    # A developer's environment may forbid writing bytecode; an installed agent has it.
    AGENT_ENV.update(PYTHONDONTWRITEBYTECODE="", ENI_AGENT_LOCK=str(workdir / "apply.lock"))
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        if not args.editable:
            print("installing this checkout into a throwaway venv ...", flush=True)
            AGENT = install_agent(workdir)
        print(f"eni-agent benchmark: medians of {runs} runs; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, kernel {os.uname().release}")
        for _ in range(2):  # warm-up: the first runs after an install read it from disk
            timed([*AGENT, "--help"])
        helps = [timed([*AGENT, "--help"]) for _ in range(runs * 2)]
        results["help"] = statistics.median(helps)
        python = str(Path(AGENT[0]).with_name("python")) if len(AGENT) == 1 else PY
        stack = [timed([python, "-c", STACK_FLOOR]) for _ in range(runs * 2)]
        results["stack_floor"] = statistics.median(stack)
        print(f"stack floor (a process importing pyroute2, pydantic, click): "
              f"{ms(results['stack_floor']).strip()}")

        if args.daemon_only:
            print(f"\n`eni-agent --help`: {ms(results['help'])}")
            d = results["daemon"] = print_daemon_figures(daemon_figures(32, 20, runs, workdir))
            print("\ngoals at 32 ENIs x 20 IPs")
            for row in daemon_goals(d):
                print_goal(*row)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
            return

        big_n, big_m = 32, 20
        window = 31.0  # the default resync period (30 s), and a second: one resync inside
        print(f"\n{args.routes:,} foreign routes in main (a BGP speaker), {big_n} ENIs x {big_m} "
              f"IPs, beside the same without them")
        big = big_main_figures(big_n, big_m, args.routes, runs, workdir, window)
        results["big_main"] = {"routes": args.routes, **big}
        without, with_ = big["without"], big["with"]
        print(f"  {'':<28} {'without':>11} {'with':>11} {'ratio':>7}")
        for name, key, show in [("sync cold", "cold", ms), ("sync idempotent", "idempotent", ms),
                                ("daemon READY after start", "ready_s", ms),
                                ("daemon RSS at rest", "rss_mb", lambda v: f"{v:8.1f} MB"),
                                (f"daemon CPU at rest ({window:g} s)", "cpu_percent",
                                 lambda v: f"{v:9.2f} %")]:
            ratio = with_[key] / without[key] if without[key] else float("nan")
            print(f"  {name:<28} {show(without[key])} {show(with_[key])} {ratio:6.1f}x")
        if args.big_main_only:
            for name, value, goal, ok in [
                ("sync (cold)", ms(with_["cold"]).strip(), "<= 2 s", with_["cold"] <= 2.0),
                ("sync (idempotent)", ms(with_["idempotent"]).strip(), "<= 2 s",
                 with_["idempotent"] <= 2.0),
                ("daemon RSS at rest", f"{with_['rss_mb']:.1f} MB", "<= 80 MB",
                 with_["rss_mb"] <= 80),
                ("daemon CPU at rest", f"{with_['cpu_percent']:.2f} %", "<= 1 %",
                 with_["cpu_percent"] <= 1.0)]:
                print(f"  {name:<24} {value:>16}   goal {goal:<10} {'met' if ok else 'NOT met'}")
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
            return

        print("\none-shot sync, whole process, vs `ip -batch` doing the same changes")
        print(f"{'ENIs x IPs':>11} {'changes':>8} {'ip -batch':>11} {'py floor':>11} "
              f"{'ratio':>6} {'sync cold':>11} {'ratio':>7} {'idempotent':>11}   | in-process: "
              f"{'cold':>9} {'ratio':>6} {'idempotent':>11}")
        growth = []
        for n, m in sizes:
            build(n, m)
            doc = document(n, m, workdir / f"doc-{n}x{m}.json")
            figures = measure_sync(n, m, runs, doc)
            changes = n * (2 * m + 3)
            ratio = figures["cold"] / figures["ip_batch"]
            growth.append({"enis": n, "ips": m, "changes": changes, **figures, "ratio": ratio})
            engine_ratio = figures["engine_cold"] / figures["ip_batch"]
            growth[-1]["engine_ratio"] = engine_ratio
            floor_ratio = figures["floor"] / figures["ip_batch"]
            growth[-1]["floor_ratio"] = floor_ratio
            print(f"{n:>5} x {m:<3} {changes:>8} {ms(figures['ip_batch'])} "
                  f"{ms(figures['floor'])} {floor_ratio:5.1f}x "
                  f"{ms(figures['cold'])} {ratio:6.1f}x {ms(figures['idempotent'])}   |   "
                  f"{ms(figures['engine_cold'])} {engine_ratio:5.1f}x "
                  f"{ms(figures['engine_idempotent'])}")
        results["sync"] = growth

        d = results["daemon"] = print_daemon_figures(daemon_figures(32, 20, runs, workdir))
        print("\ndaemon failover, against the metadata stand-in (benchmarks/failover.py)")
        out = subprocess.run([PY, str(REPO / "benchmarks" / "failover.py"), "--runs", str(runs)],
                             capture_output=True, text=True, cwd=REPO).stdout
        failover = [line for line in out.splitlines() if line.startswith("  failover")]
        print("\n".join(failover) or "  (failover benchmark failed)")
        results["failover"] = failover
        print(f"\n`eni-agent --help`: {ms(results['help'])}")

        row = next(g for g in growth if (g["enis"], g["ips"]) == (32, 20))
        floor = results["stack_floor"]
        print(f"\ngoals at 32 ENIs x 20 IPs (stack floor {ms(floor).strip()})")
        for name, value, goal, ok in [
            ("cold sync", f"{ms(row['cold']).strip()} = floor + "
             f"{ms(row['cold'] - floor).strip()}", "<= floor + 200 ms",
             row["cold"] - floor <= 0.200),
            ("idempotent sync", f"{ms(row['idempotent']).strip()} = floor + "
             f"{ms(row['idempotent'] - floor).strip()}", "<= floor + 120 ms",
             row["idempotent"] - floor <= 0.120),
            ("  (vs ip -batch)", f"{row['ratio']:.1f}x", "", True),
            ("  (engine, in-process)", f"{row['engine_ratio']:.1f}x, "
             f"{ms(row['engine_idempotent']).strip()}", "", True),
            ("  (python floor)", f"{row['floor_ratio']:.1f}x", "", True),
            *daemon_goals(d),
            ("--help", ms(results["help"]).strip(), "<= 100 ms", results["help"] <= 0.100),
            ("big main: sync cold", ms(with_["cold"]).strip(), "<= 2 s", with_["cold"] <= 2.0),
            ("big main: daemon RSS", f"{with_['rss_mb']:.1f} MB", "<= 80 MB",
             with_["rss_mb"] <= 80),
            ("big main: daemon CPU", f"{with_['cpu_percent']:.2f} %", "<= 1 %",
             with_["cpu_percent"] <= 1.0),
        ]:
            print_goal(name, value, goal, ok)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
