"""Running commands: anywhere, inside a namespace (``ip netns exec``), ``ip``
itself, sysctls and kernel counters of a namespace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

#: The repository's root: the agent under test runs from here (``python -m eni_agent``).
REPO = Path(__file__).resolve().parents[2]


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

