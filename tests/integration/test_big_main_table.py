"""With a big `main` (a BGP speaker, a large VPN: here 20,000 routes), the
agent reads only what it owns, and still every foreign fact it needs: the
foreign routes of main and of the local table are dropped before pyroute2
decodes them, in dumps and in notifications alike.

Kept correct despite that: a foreign route in an agent-numbered table is a
conflict; a foreign default route through an ENI in main is warned about;
drift of the agent's own routes is repaired by the daemon at once, while a
storm of foreign route notifications wakes it for nothing.
"""

from __future__ import annotations

import subprocess
import time


from tests.harness.agent import Agent
from tests.harness.kernel import table_of
from tests.harness.prober import traffic_failures
from tests.harness.daemon import run_daemon
from tests.harness.metadata import metadata_file
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import ip_json
from tests.harness.metadata import build_metadata
from tests.harness.topology import Topology


FOREIGN_ROUTES = 20_000


def add_foreign_routes(t: Topology, count: int = FOREIGN_ROUTES, op: str = "add") -> None:
    """`count` /24 routes in main via the primary's gateway, as a BGP speaker's."""
    batch = "".join(f"route {op} {20 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24 "
                    f"via 10.0.0.253 proto bgp\n" for i in range(count))
    subprocess.run(["ip", "-n", t.guest, "-batch", "-"], input=batch, text=True, check=True)


def test_sync_with_a_big_main_sees_conflicts_and_foreign_defaults(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    add_foreign_routes(t)
    agent = Agent(t, tmp_path)
    agent.write()
    # Someone else's: a route in eth2's would-be table, a default route via eth1 in main.
    ip(t.guest, "route", "add", "blackhole", "10.99.0.0/16", "table", table_of(t, "eth2"))
    ip(t.guest, "link", "set", "eth1", "up")
    ip(t.guest, "route", "add", "default", "via", "10.0.1.253", "dev", "eth1", "metric", 500,
       "onlink")

    res = agent.sync("--json")

    assert res.code == 3, str(res)  # the conflict needs an operator
    assert res.states() == {"eth1": "configured", "eth2": "conflict"}
    assert any("default route via eth1" in w for w in res.eni("eth1")["warnings"]), str(res)
    assert traffic_failures(t, ["10.0.1.10"]) == []
    assert len(ip_json(t.guest, "route", "show", "table", "main")) > FOREIGN_ROUTES  # untouched
    again = agent.sync("--json")
    assert again.eni("eth1")["state"] == "in-sync" and again.eni("eth1")["changes"] == []


def test_the_daemon_ignores_foreign_route_churn_and_repairs_its_own(topology_with_eni, tmp_path):
    t = topology_with_eni
    add_foreign_routes(t)
    doc = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, doc, tmp_path, resync_interval=3600) as daemon:
        daemon.wait_ready()
        daemon.wait_log("ready:")  # logged just after READY=1 is sent
        table = table_of(t, "eth1")
        settled = len(daemon.log_lines())
        cpu = daemon.cpu_seconds()

        add_foreign_routes(t, op="del")  # 20,000 notifications of routes not the agent's
        add_foreign_routes(t)
        time.sleep(1.0)

        # Decoding them took ~1 s of CPU here; dropped undecoded, ~0.1 s.
        assert daemon.cpu_seconds() - cpu < 0.5
        assert daemon.log_lines()[settled:] == [], daemon.log_text()  # woken for nothing

        ip(t.guest, "route", "del", "default", "table", table)
        daemon.wait_log("add route default via 10.0.1.253", timeout=5)
        assert traffic_failures(t, ["10.0.1.10"]) == []
        assert daemon.python_pid() and daemon.alive()
