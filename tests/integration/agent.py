"""Running eni-agent in a topology's guest namespace, and reading the kernel
independently of it (``ip -j``; address protocols through a bare pyroute2
dump, since iproute2 6.1 cannot print IFA_PROTO).

    agent = Agent(topo, tmp_path)
    agent.write()                       # build_metadata(topo) -> tmp_path/metadata.json
    res = agent.sync("--json")          # ip netns exec GUEST python -m eni_agent sync ...
    assert res.code == 0 and res.eni("eth1")["state"] == "configured"
    assert_traffic(topo, ["10.0.0.5", "10.0.1.10"])

Every run gets its own apply lock (``ENI_AGENT_LOCK`` under the test's
tmp_path), so tests never wait on a daemon or another test session, and an
empty ``--config`` unless the test passes its own, so a machine-wide
/etc/eni-agent/config.toml (scripts/install.sh) cannot change the results.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from .netns import (
    Topology,
    _close,
    build_metadata,
    in_netns,
    inbound_handshake,
    ip_json,
    outbound_handshake,
    run_in,
    write_metadata,
)

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = "234"        # as `ip -N -j` prints it
TABLE_BASE = 10000
RULE_PRIORITY = 10000
#: The rules of a namespace nobody touched (`ip -j rule`).
DEFAULT_RULES = [
    {"priority": 0, "src": "all", "table": "local"},
    {"priority": 32766, "src": "all", "table": "main"},
    {"priority": 32767, "src": "all", "table": "default"},
]
FAIL_TIMEOUT = 0.5      # for probes that are expected to fail
COMMANDS = {"sync", "status", "validate", "cleanup"}


# --------------------------------------------------------------------------
# Running the agent
# --------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """One finished eni-agent command."""
    argv: list[str]
    cp: subprocess.CompletedProcess

    @property
    def code(self) -> int:
        return self.cp.returncode

    @property
    def stdout(self) -> str:
        return self.cp.stdout

    @property
    def stderr(self) -> str:
        return self.cp.stderr

    @functools.cached_property
    def json(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {exc}\n{self}") from None

    def eni(self, key: str) -> dict[str, Any]:
        """The JSON report entry of one ENI, by MAC (any case) or link name."""
        for entry in self.json["enis"]:
            if entry["mac"] == key.lower() or entry["link"] == key:
                return entry
        raise AssertionError(f"no ENI {key} in the report\n{self}")

    def states(self) -> dict[str, str]:
        """{link name or MAC: state} from the JSON report."""
        return {e["link"] or e["mac"]: e["state"] for e in self.json["enis"]}

    def __str__(self) -> str:
        return (f"$ eni-agent {' '.join(self.argv)}\n-> exit {self.code}\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}")


class Agent:
    """eni-agent commands run as root inside ``topo.guest``."""

    def __init__(self, topo: Topology, workdir: Path) -> None:
        self.topo = topo
        self.workdir = Path(workdir)
        self.metadata = self.workdir / "metadata.json"
        self.env = {k: v for k, v in os.environ.items() if k != "ENI_AGENT_DEBUG"}
        self.env["ENI_AGENT_LOCK"] = str(self.workdir / "apply.lock")
        # Built-in defaults, but for the vswitch routes in main: the tests of
        # the ENI tables count what the agent owns; test_management_network.py
        # is about those routes (and runs with the defaults).
        self.no_config = write_config(self.workdir / "defaults.toml",
                                      "# integration tests\nsubnet_routes = false\n")

    def write(self, doc: dict[str, Any] | None = None) -> Path:
        """Write ``doc`` (default: build_metadata(topo)) as the metadata file, mode 0600."""
        return write_metadata(build_metadata(self.topo) if doc is None else doc, self.metadata)

    def run(self, *args: Any) -> Run:
        argv = [str(a) for a in args]
        if argv and argv[0] in COMMANDS and "--config" not in argv:
            argv[1:1] = ["--config", str(self.no_config)]
        cp = run_in(self.topo.guest, sys.executable, "-m", "eni_agent", *argv,
                    cwd=REPO, env=self.env, timeout=60)
        result = Run(argv, cp)
        assert "Traceback" not in cp.stderr, str(result)
        return result

    def sync(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("sync", "--metadata", metadata or self.metadata, *args)

    def status(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("status", "--metadata", metadata or self.metadata, *args)

    def validate(self, *args: Any, metadata: Path | str | None = None) -> Run:
        return self.run("validate", "--metadata", metadata or self.metadata, *args)

    def cleanup(self, *args: Any) -> Run:
        return self.run("cleanup", *args)

    def converge(self, *args: Any) -> Run:
        """``sync --json`` that must converge (exit 0)."""
        res = self.sync("--json", *args)
        assert res.code == 0, str(res)
        assert res.json["result"] == "converged", str(res)
        return res


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    """A config file (TOML) with ``mode``."""
    path.write_text(text)
    os.chmod(path, mode)
    return path


def assert_one_error_line(res: Run, code: int) -> str:
    """An expected failure: exit ``code``, nothing on stdout, exactly one
    ``eni-agent: `` line on stderr (returned)."""
    assert res.code == code, str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eni-agent: "), str(res)
    assert res.stdout == "", str(res)
    return lines[0]


# --------------------------------------------------------------------------
# Kernel state, read without the agent
# --------------------------------------------------------------------------

def ifindex(topo: Topology, ifname: str) -> int:
    return ip_json(topo.guest, "link", "show", "dev", ifname)[0]["ifindex"]


def table_of(topo: Topology, ifname: str, base: int = TABLE_BASE) -> int:
    """The table eni-agent should use for ``ifname``: base + ifindex."""
    return base + ifindex(topo, ifname)


def protocol_names() -> set[str]:
    """How ``ip`` prints protocol 234: the number, or the name an rt_protos
    file gives it (scripts/install.sh installs ``234 eni-agent``)."""
    names = {PROTOCOL}
    paths = []
    for root in ("/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2"):
        paths += [Path(root, "rt_protos"), *sorted(Path(root, "rt_protos.d").glob("*.conf"))]
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2 and fields[0] == PROTOCOL:
                names.add(fields[1])
    return names


def _numeric_protocol(entries: list[dict]) -> list[dict]:
    """Entries with protocol 234 spelled "234" whatever rt_protos says."""
    names = protocol_names()
    return [{**e, "protocol": PROTOCOL} if e.get("protocol") in names else e for e in entries]


def rules(topo: Topology) -> list[dict]:
    """``ip -j rule`` in the guest, kernel order (protocol 234 as "234")."""
    return _numeric_protocol(ip_json(topo.guest, "rule", "show"))


def owned_rules(topo: Topology) -> list[dict]:
    """Rules carrying protocol 234 (``ip -N``: numbers, never rt_protos names)."""
    return [r for r in ip_json(topo.guest, "-N", "rule", "show") if r.get("protocol") == PROTOCOL]


def owned_routes(topo: Topology) -> list[dict]:
    """Routes of every table carrying protocol 234."""
    return [r for r in ip_json(topo.guest, "-N", "route", "show", "table", "all")
            if r.get("protocol") == PROTOCOL]


def rule_sources(topo: Topology) -> set[str]:
    return {r["src"] for r in rules(topo)}


def table_routes(topo: Topology, table: int) -> list[dict]:
    """``ip -j route show table N``, sorted by destination (protocol 234 as "234")."""
    return sorted(_numeric_protocol(ip_json(topo.guest, "route", "show", "table", table)),
                  key=lambda r: r["dst"])


def routes_in_table(topo: Topology, table: int) -> list[dict]:
    """Routes of ``table`` from the ``table all`` dump (empty if the table is
    gone); ``ip -N``: numbers only, even for a table named in rt_tables."""
    return [r for r in ip_json(topo.guest, "-N", "route", "show", "table", "all")
            if r.get("table") == str(table)]


def main_routes(topo: Topology) -> list[dict]:
    return ip_json(topo.guest, "route", "show", "table", "main")


def link(topo: Topology, ifname: str) -> dict:
    return ip_json(topo.guest, "addr", "show", "dev", ifname)[0]


def addresses(topo: Topology, ifname: str) -> list[dict]:
    """IPv4 ``addr_info`` of ``ifname`` without the ticking lifetimes, kernel order."""
    return [{k: v for k, v in a.items() if not k.endswith("_life_time")}
            for a in link(topo, ifname).get("addr_info", []) if a.get("family") == "inet"]


def address_ips(topo: Topology, ifname: str) -> list[str]:
    return [a["local"] for a in addresses(topo, ifname)]


def is_up(topo: Topology, ifname: str) -> bool:
    return "UP" in link(topo, ifname)["flags"]


_ADDR_PROTO_DUMP = """
import json, socket
from pyroute2 import IPRoute
with IPRoute() as ipr:
    names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
    print(json.dumps({f"{names[m['index']]} {m.get_attr('IFA_LOCAL')}/{m['prefixlen']}":
                      m.get_attr("IFA_PROTO") or 0
                      for m in ipr.get_addr(family=socket.AF_INET)}))
"""


def address_protocols(topo: Topology) -> dict[str, int]:
    """{"eth1 10.0.1.10/24": IFA_PROTO, ...} for every IPv4 address of the
    guest, from a plain pyroute2 dump (none of the agent's code)."""
    cp = run_in(topo.guest, sys.executable, "-c", _ADDR_PROTO_DUMP, check=True)
    return json.loads(cp.stdout)


def kernel_config(topo: Topology) -> dict[str, list[dict]]:
    """guest_state without links: addresses, rules, routes (what cleanup restores)."""
    from .netns import guest_state
    state = guest_state(topo)
    return {k: state[k] for k in ("addresses", "rules", "routes")}


def dumps(state: Any) -> str:
    """Canonical text of a snapshot, for byte-for-byte comparisons."""
    return json.dumps(state, sort_keys=True, indent=1)


def expected_table(eni, ifname: str | None = None) -> list[dict]:
    """``ip -j route show table N`` of a converged ENI, sorted by dst."""
    dev = ifname or eni.ifname
    return sorted([
        {"dst": "default", "gateway": eni.gateway, "dev": dev, "protocol": PROTOCOL,
         "flags": ["onlink"]},
        {"dst": eni.cidr, "dev": dev, "protocol": PROTOCOL, "scope": "link", "flags": []},
    ], key=lambda r: r["dst"])


def expected_rules(ips: Iterable[str], table: int, priority: int = RULE_PRIORITY) -> list[dict]:
    """Owned rules as ``ip -N -j rule`` prints them."""
    return [{"priority": priority, "src": ip, "table": str(table), "protocol": PROTOCOL}
            for ip in ips]


def sorted_rules(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda r: (r["priority"], r.get("src", ""), r.get("table", "")))


# --------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------

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


def eni_ips(topo: Topology, *ifnames: str) -> list[str]:
    """The private IPs of the named attached ENIs (all of them if none named)."""
    names = ifnames or tuple(topo.enis)
    return [addr for name in names for addr in topo.eni(name).ips]


def answers_on_any_address(topo: Topology, addr: str, timeout: float = FAIL_TIMEOUT) -> bool:
    """True if a guest listener on 0.0.0.0 accepts a connection from the host
    to ``addr``: unlike inbound_handshake, this does not need ``addr`` to be
    bindable, so it shows whether the guest still answers on it at all."""
    server = client = conn = None
    try:
        server = in_netns(topo.guest, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        server.bind(("0.0.0.0", 0))
        server.listen(4)
        port = server.getsockname()[1]
        client = in_netns(topo.host, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        client.settimeout(timeout)
        deadline = time.monotonic() + timeout
        client.connect((addr, port))
        server.settimeout(max(0.05, deadline - time.monotonic()))
        conn, _ = server.accept()
        return True
    except OSError:
        return False
    finally:
        for sock in (conn, client, server):
            _close(sock)

