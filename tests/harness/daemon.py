"""Run `eni-agent daemon` as a real process inside a topology's guest namespace.

    with run_daemon(topo, metadata_path, tmp_path) as d:
        ready = d.wait_ready()              # the READY=1 datagram (or a failure)
        d.wait_until(lambda: eni_configured(topo, eni))
        d.log_text()

Most daemon tests open with :func:`configured_daemon` instead (started, READY=1,
the ENIs configured), or take the ``daemon_with_eni`` fixture
(tests/integration/conftest.py) when topology_with_eni and the defaults suit.

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
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .agent import write_config
from .commands import REPO, run_in
from .enis import Eni
from .expect import eni_problems
from .kernel import describe
from .metadata import build_metadata, metadata_file
from .topology import Topology

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


@contextlib.contextmanager
def configured_daemon(topo: Topology, workdir: Path, metadata: str | os.PathLike | None = None,
                      *, service: Any = None, enis: Iterable[Eni] | None = None,
                      ready_timeout: float = 15.0, configured_within: float = 5.0,
                      prepare: Callable[[DaemonProc], Any] | None = None,
                      **kwargs: Any) -> Iterator[DaemonProc]:
    """The opening the daemon tests share: the daemon started, READY=1 within
    ``ready_timeout`` s, then each ENI of ``enis`` (default: the topology's
    secondary ENIs) configured (``eni_problems`` empty) within
    ``configured_within`` s of READY=1; with ``configured_within=0`` already
    configured when READY=1 came (asserted, with the kernel's state).

    It reads ``metadata`` (default: the topology's document, written by
    ``metadata_file(workdir, ...)``; ``d.metadata`` is its path) or, given
    ``service``, that metadata service stand-in through :func:`daemon_for`.
    ``prepare(d)`` runs before the daemon starts (to change ``d.argv`` or
    ``d.env``); ``kwargs`` go to run_daemon or daemon_for. Stopped on the
    way out as run_daemon."""
    if service is not None:
        opened = daemon_for(topo, service, workdir, start=False, **kwargs)
    else:
        if metadata is None:
            metadata = metadata_file(workdir, build_metadata(topo))
        opened = run_daemon(topo, metadata, workdir, start=False, **kwargs)
    with opened as daemon:
        if prepare is not None:
            prepare(daemon)
        daemon.start()
        daemon.wait_ready(ready_timeout)
        wanted = list(topo.enis.values() if enis is None else enis)
        if configured_within == 0:
            problems = {eni.ifname: eni_problems(topo, eni) for eni in wanted}
            assert not any(problems.values()), f"at READY=1: {problems}\n{describe(topo)}"
        else:
            daemon.wait_until(lambda: not any(eni_problems(topo, eni) for eni in wanted),
                              configured_within,
                              what=" and ".join(f"{eni.ifname} configured" for eni in wanted))
        yield daemon


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


def eni_agent_cli(topo: Topology, daemon: DaemonProc, *args: str,
                  timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a one-shot ``eni-agent ARGS`` in the guest with the daemon's lock and config."""
    env = {**os.environ, "ENI_AGENT_LOCK": daemon.lock_path}
    env.pop("NOTIFY_SOCKET", None)
    return run_in(topo.guest, sys.executable, "-m", "eni_agent", *args,
                  "--config", str(daemon.config), cwd=REPO, env=env, timeout=timeout)


def daemon_for(t: Topology, svc: Any, tmp_path: Path, *, metadata_interval: int | None = 5,
               burst_for_virtual_links: bool = True, extra_config: str = "",
               resync_interval: float | None = 2,
               **kwargs: Any) -> contextlib.AbstractContextManager[DaemonProc]:
    """run_daemon reading the metadata service ``svc`` (metadata_service.py),
    polling it every ``metadata_interval`` seconds (default 5, the config's
    minimum; None: the config's default), with ``extra_config`` appended to
    the config. ``burst_for_virtual_links`` is on by default because the
    test ENIs are veths. DaemonProc always passes `--metadata PATH` (through
    pathlib, which would fold the URL's `//`), so the URL is given again
    after it: click keeps the last value of a repeated option."""
    interval = "" if metadata_interval is None else f"metadata_interval = {metadata_interval}\n"
    config = write_config(tmp_path / "config.toml",
                          f"{interval}burst_for_virtual_links = "
                          f"{str(burst_for_virtual_links).lower()}\n{extra_config}", 0o600)
    return run_daemon(t, tmp_path / "unused-metadata.json", tmp_path, config=config,
                      resync_interval=resync_interval, extra_args=("--metadata", svc.url),
                      **kwargs)
