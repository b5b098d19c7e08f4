"""Run `eni-agent daemon` as a real process inside a topology's guest namespace.

    with run_daemon(topo, metadata_path, tmp_path) as d:
        ready = d.wait_ready()              # the READY=1 datagram (or a failure)
        d.wait_until(lambda: eni_configured(topo, eni))
        d.log_text()

The daemon is started as

    ip netns exec <guest> <python> -m eni_agent daemon --metadata PATH
        --config CONFIG [--resync-interval N] [--log-level debug]

(cwd = the repository), with:

* ``NOTIFY_SOCKET`` pointing at an AF_UNIX datagram socket bound by the test in
  a private temporary directory; a background thread collects every datagram
  (READY=1, STATUS=..., STOPPING=1, WATCHDOG=1) with its arrival time, and can
  run a callback at the moment READY=1 arrives (e.g. to snapshot the kernel);
* ``ENI_AGENT_LOCK`` set to a lock file under the test's tmp dir, so a test
  never takes or waits for the system-wide ``/run/eni-agent/apply.lock``;
* an explicit ``--config`` (an empty 0600 file unless the test passes one), so
  a ``/etc/eni-agent/config.toml`` on the test machine cannot leak in;
* stderr (the daemon's log) written to a file.

On leaving the ``with`` block the daemon is always stopped (SIGTERM, then
SIGKILL) and its log is printed: pytest shows it only when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .agent import traffic_failures  # noqa: F401  (the daemon tests' traffic check)
from .netns import (
    Eni,
    Topology,
    in_netns,
    ip,
    ip_json,
    link_by_mac,
    run_in,
    write_metadata,
)

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = 234
TABLE_BASE = 10000
RULE_PRIORITY = 10000
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Notification:
    """One sd_notify datagram."""

    at: float  # time.monotonic() when it arrived
    raw: str
    fields: dict[str, str] = field(default_factory=dict)


class DaemonError(AssertionError):
    pass


class DaemonProc:
    """A running daemon; see the module docstring. Built by :func:`run_daemon`."""

    def __init__(self, topo: Topology, metadata: str | os.PathLike, workdir: Path, *,
                 config: str | os.PathLike | None = None, resync_interval: float | None = None,
                 log_level: str | None = "debug", extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None,
                 on_ready: Callable[[], Any] | None = None) -> None:
        self.topo = topo
        self.metadata = Path(metadata)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lock_path = str(self.workdir / "run" / "apply.lock")
        if config is None:
            config = self.workdir / "config.toml"
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
        self.config = Path(config)
        self.log_path = self.workdir / "daemon.log"
        self.on_ready = on_ready
        self.ready_result: Any = None  # what on_ready returned, when READY=1 arrived
        self.notifications: list[Notification] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        # sun_path is limited to 108 bytes: pytest's tmp_path can be longer.
        self._sockdir = tempfile.mkdtemp(prefix="eni-notify-")
        self.notify_path = os.path.join(self._sockdir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.notify_path)
        self.sock.settimeout(0.05)
        self.argv = ["ip", "netns", "exec", topo.guest, sys.executable, "-m", "eni_agent",
                     "daemon", "--metadata", str(self.metadata), "--config", str(self.config)]
        if resync_interval is not None:
            self.argv += ["--resync-interval", str(resync_interval)]
        if log_level:
            self.argv += ["--log-level", log_level]
        self.argv += list(extra_args)
        self.env = {**os.environ, "NOTIFY_SOCKET": self.notify_path,
                    "ENI_AGENT_LOCK": self.lock_path, "PYTHONUNBUFFERED": "1"}
        for key in ("WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "ENI_AGENT_DEBUG"):
            self.env.pop(key, None)
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self._thread = threading.Thread(target=self._collect, name="notify-collector",
                                        daemon=True)
        self.started_at = 0.0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "DaemonProc":
        self._thread.start()
        self._log_file = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=self._log_file,
                                     start_new_session=True)
        return self

    def close(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and the collector thread."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self._kill_group(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill_group(signal.SIGKILL)
                    self.proc.wait(timeout=5)
        finally:
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join(timeout=2)
            self.sock.close()
            if self._log_file is not None:
                self._log_file.close()
            with contextlib.suppress(OSError):
                os.unlink(self.notify_path)
            with contextlib.suppress(OSError):
                os.rmdir(self._sockdir)

    def _kill_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    # -- notifications ---------------------------------------------------------

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            at = time.monotonic()
            raw = data.decode("utf-8", "replace")
            fields = dict(line.split("=", 1) for line in raw.split("\n") if "=" in line)
            note = Notification(at, raw, fields)
            if fields.get("READY") == "1" and self.on_ready is not None:
                try:  # at the moment READY arrives, before anyone else looks
                    self.ready_result = self.on_ready()
                except Exception as e:  # reported by the test that asked
                    self.ready_result = e
            with self._cond:
                self.notifications.append(note)
                self._cond.notify_all()

    def messages(self, key: str | None = None) -> list[Notification]:
        with self._cond:
            notes = list(self.notifications)
        return [n for n in notes if key is None or key in n.fields]

    def wait_notification(self, predicate: Callable[[Notification], bool],
                          timeout: float = 10.0, *, after: int = 0) -> Notification:
        """The first notification (from index ``after``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for note in self.notifications[after:]:
                    if predicate(note):
                        return note
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self.proc is not None and self.proc.poll() is not None:
                    break
                self._cond.wait(min(remaining, 0.1))
        got = [n.raw for n in self.notifications]
        raise DaemonError(f"no matching notification within {timeout}s "
                          f"(exit code {self.returncode}); got {got}")

    def wait_ready(self, timeout: float = 15.0) -> Notification:
        """Wait for READY=1; fails early if the daemon exits."""
        return self.wait_notification(lambda n: n.fields.get("READY") == "1", timeout)

    # -- polling --------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0,
                   interval: float = 0.02, what: str = "condition") -> float:
        """Poll ``predicate`` until it is truthy; returns the seconds it took.
        Fails if the daemon dies meanwhile or the timeout passes."""
        start = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - start
            if not self.alive():
                raise DaemonError(f"daemon exited ({self.returncode}) while waiting for {what}")
            if time.monotonic() - start > timeout:
                raise DaemonError(f"{what} not reached within {timeout}s")
            time.sleep(interval)

    # -- the process ------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, signum: int) -> None:
        os.kill(self.python_pid(), signum)

    def wait_exit(self, timeout: float = 5.0) -> int:
        return self.proc.wait(timeout=timeout)

    def python_pid(self) -> int:
        """The pid of the python interpreter running the daemon: `ip netns exec`
        execs the command in place (iproute2), but look at the children too in
        case a version forks."""
        pid = self.proc.pid
        for _ in range(3):
            cmdline = _cmdline(pid)
            if cmdline and "eni_agent" in cmdline and "ip" != os.path.basename(cmdline[0]):
                return pid
            children = _children(pid)
            if not children:
                return pid
            pid = children[0]
        return pid

    def cpu_seconds(self) -> float:
        """utime + stime of the daemon's python process, in seconds."""
        with open(f"/proc/{self.python_pid()}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
        return (utime + stime) / CLK_TCK

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, needle: str = "") -> list[str]:
        return [line for line in self.log_text().splitlines() if needle in line]

    def wait_log(self, needle: str, timeout: float = 5.0, count: int = 1) -> float:
        return self.wait_until(lambda: len(self.log_lines(needle)) >= count, timeout,
                               what=f"{count} log line(s) containing {needle!r}")

    def show(self) -> None:
        print(f"\n===== eni-agent daemon (exit code {self.returncode}) "
              f"{' '.join(self.argv)}")
        for note in self.messages():
            print(f"  notify +{note.at - self.started_at:6.3f}s {note.raw!r}")
        print("----- daemon log -----")
        print(self.log_text().rstrip())
        print("----- end of daemon log -----")


@contextlib.contextmanager
def run_daemon(topo: Topology, metadata: str | os.PathLike, workdir: Path, *,
               start: bool = True, **kwargs: Any) -> Iterator[DaemonProc]:
    """Start the daemon (unless ``start=False``: then call ``d.start()``);
    always stop it and print its log on the way out."""
    daemon = DaemonProc(topo, metadata, Path(workdir) / "daemon", **kwargs)
    try:
        if start:
            daemon.start()
        yield daemon
    finally:
        try:
            daemon.close()
        finally:
            daemon.show()


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
    return children


# --------------------------------------------------------------------------
# What "configured" means, read from the kernel
# --------------------------------------------------------------------------

def owned_rules(topo: Topology) -> list[dict]:
    """The guest's rules that carry eni-agent's protocol mark."""
    marks = (str(PROTOCOL), PROTOCOL)
    return [r for r in ip_json(topo.guest, "rule") if r.get("protocol") in marks]


def eni_link(topo: Topology, eni: Eni) -> dict | None:
    return link_by_mac(topo.guest, eni.mac)


def eni_table(topo: Topology, eni: Eni, table_base: int = TABLE_BASE) -> int | None:
    link = eni_link(topo, eni)
    return None if link is None else table_base + link["ifindex"]


def eni_problems(topo: Topology, eni: Eni, *, ips: tuple[str, ...] | None = None,
                 priority: int = RULE_PRIORITY, table_base: int = TABLE_BASE,
                 protocol: int = PROTOCOL) -> list[str]:
    """Why ``eni`` is not (yet) configured as eni-agent should: [] when it is.

    Checks the link is up, holds exactly ``ips`` (default: eni.ips) from
    eni-agent with noprefixroute, has a route table ``table_base + ifindex``
    with the subnet route and the default route via the gateway, and one rule
    ``from <ip> lookup <table>`` at ``priority`` per address (and no owned rule
    of this ENI's addresses elsewhere). Each of those routes, rules and (on a
    kernel that stores address protocols) addresses carries eni-agent's
    ``protocol``: configured by eni-agent, not merely present."""
    ips = tuple(eni.ips if ips is None else ips)
    link = eni_link(topo, eni)
    if link is None:
        return [f"no link with MAC {eni.mac}"]
    problems = []
    name, table, mark = link["ifname"], table_base + link["ifindex"], str(protocol)
    if "UP" not in link.get("flags", []):
        problems.append(f"{name} is not up")
    addrs = ip_json(topo.guest, "-4", "addr", "show", "dev", name)
    infos = addrs[0].get("addr_info", []) if addrs else []
    have = {a["local"]: a for a in infos}
    if set(have) != set(ips):
        problems.append(f"{name} addresses {sorted(have)} != {sorted(ips)}")
    for addr in ips:
        info = have.get(addr)
        if info is not None and (info.get("prefixlen") != eni.prefixlen
                                 or not info.get("noprefixroute")):
            problems.append(f"{name} address {addr} is {info}")
    if KERNEL_STORES_ADDRESS_PROTOCOLS and not problems:  # a netlink dump: only when it matters
        unmarked = {ip: proto for ip, proto in address_protocols(topo, name).items()
                    if ip in ips and proto != protocol}
        if unmarked:
            problems.append(f"{name} addresses without protocol {protocol}: {unmarked}")
    routes = table_routes(topo, table, numeric=True)
    dsts = {(r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol")) for r in routes}
    for want in ((eni.cidr, None, name, mark), ("default", eni.gateway, name, mark)):
        if want not in dsts:
            problems.append(f"table {table} lacks {want}: {sorted(map(str, dsts))}")
    rules = ip_json(topo.guest, "-N", "rule")  # -N: protocols and tables as numbers
    for addr in ips:
        matching = [r for r in rules if r.get("src") == addr and r.get("srclen", 32) == 32]
        ok = [r for r in matching if r.get("table") == str(table) and r.get("priority") == priority
              and r.get("protocol") == mark]
        if len(ok) != 1 or len(matching) != 1:
            problems.append(f"rules for {addr}: {matching} "
                            f"(want one: {priority} -> table {table}, protocol {protocol})")
    extra = [r for r in rules if r.get("src") in set(eni.ips) - set(ips)]
    if extra:
        problems.append(f"rules left for removed addresses: {extra}")
    return problems


def _kernel_stores_address_protocols() -> bool:
    """IFA_PROTO exists since Linux 5.18; before, no address carries a
    protocol (and eni-agent, guessing the same way, marks none)."""
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return version is None or (int(version[1]), int(version[2])) >= (5, 18)


KERNEL_STORES_ADDRESS_PROTOCOLS = _kernel_stores_address_protocols()


def address_protocols(topo: Topology, ifname: str) -> dict[str, int]:
    """{ip: IFA_PROTO (0 if none)} of ``ifname``'s IPv4 addresses, read with a
    plain pyroute2 dump (iproute2 6.1 cannot print IFA_PROTO; none of the
    agent's code is involved)."""
    from pyroute2 import IPRoute  # here: most test files never need it

    def dump() -> dict[str, int]:
        with IPRoute() as ipr:
            (index,) = ipr.link_lookup(ifname=ifname)
            return {m.get_attr("IFA_LOCAL"): m.get_attr("IFA_PROTO") or 0
                    for m in ipr.get_addr(index=index, family=socket.AF_INET)}
    return in_netns(topo.guest, dump)


def table_routes(topo: Topology, table: int, numeric: bool = False) -> list[dict]:
    """Routes of ``table`` in the guest ([] if the table does not exist);
    ``numeric``: protocols as numbers (``ip -N``), whatever rt_protos names them."""
    cp = ip(topo.guest, *(["-N"] if numeric else []), "-j", "-4", "route", "show", "table",
            str(table), check=False)
    return json.loads(cp.stdout) if cp.returncode == 0 and cp.stdout.strip() else []


def eni_configured(topo: Topology, eni: Eni, **kwargs: Any) -> bool:
    return not eni_problems(topo, eni, **kwargs)


def describe(topo: Topology) -> str:
    """The guest's addresses, rules and tables, for failure messages."""
    out = []
    for args in (("-br", "addr"), ("rule",), ("route", "show", "table", "all")):
        cp = run_in(topo.guest, "ip", *args)
        out.append(f"$ ip {' '.join(args)}\n{cp.stdout}{cp.stderr}")
    return "\n".join(out)


def write_json_atomically(doc: dict, path: Path) -> None:
    """A config manager's update: write a temp file in the same directory, rename it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.rename(tmp, path)


def write_in_place(path: Path, data: bytes) -> None:
    """An editor's in-place update: open with O_TRUNC, one write, close."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def eni_agent_cli(topo: Topology, daemon: DaemonProc, *args: str,
                  timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a one-shot ``eni-agent ARGS`` in the guest with the daemon's lock and config."""
    env = {**os.environ, "ENI_AGENT_LOCK": daemon.lock_path}
    env.pop("NOTIFY_SOCKET", None)
    return run_in(topo.guest, sys.executable, "-m", "eni_agent", *args,
                  "--config", str(daemon.config), cwd=REPO, env=env, timeout=timeout)


def metadata_file(tmp_path: Path, doc: dict) -> Path:
    """Write ``doc`` to ``tmp_path/etc/metadata.json`` (0600, in a 0700 directory)."""
    directory = Path(tmp_path) / "etc"
    directory.mkdir(mode=0o700, exist_ok=True)
    return write_metadata(doc, directory / "metadata.json")
