"""The daemon against a service that misbehaves or changes its mind, and how
often it asks:

- a server dripping headers: each fetch ends at its deadline, the next one
  starts, the watchdog keeps being fed (the loop and the fetches progress),
  and the daemon follows the service once it answers again;
- normal mode switched to hardened-only while running: the refused token is
  asked for again, and the next change is applied;
- one listing that leaves out an ENI whose NIC is still attached tears
  nothing down; two in a row do;
- with default settings and `all` serving complete entries, an IP assigned
  to an attached ENI is configured within 20 s, at 12 requests a minute at
  most; over the tree, a poll re-reads only the listing and each ENI's
  addresses and prefixes.
"""

from __future__ import annotations

import time

from tests.harness.daemon import configured_daemon, daemon_for
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, owned_rules
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import ALL_PATH, LISTING_PATH, serve_metadata
from tests.harness.prober import traffic_failures

INTERVAL = 5  # the config's minimum
BUSY = 10.0
IP_LIMIT = 20.0  # issue 12 §1: an IP assigned -> configured, default settings
MACS = "/latest/meta-data/network/interfaces/macs"
POLLING = {"metadata_interval": INTERVAL, "resync_interval": None}  # no --resync-interval: the daemon's default


def sources(t) -> set:
    return {r.get("src") for r in owned_rules(t)}


def test_dripping_headers_never_blind_the_daemon(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    with serve_metadata(t, tmp_path) as svc, \
            daemon_for(t, svc, tmp_path, **POLLING, env={"WATCHDOG_USEC": "2000000"}) as d:
        d.wait_ready(timeout=30)
        svc.fault(drip={"what": "headers", "every": 1.5})
        # two fetches end at their deadline: the second one did start
        d.wait_log("deadline", timeout=2 * (INTERVAL + 10) + BUSY, count=2)
        pings = len(d.messages("WATCHDOG"))
        time.sleep(3)
        assert len(d.messages("WATCHDOG")) > pings, "the watchdog stopped being fed"
        assert d.alive()
        assert eni_problems(t, t.eni("eth1")) == []
        # the service recovers, and an IP assigned meanwhile is configured
        t.assign_private_ip("eth1", "10.0.1.12")
        svc.set_document(build_metadata(t))
        svc.clear()
        d.wait_until(lambda: "10.0.1.12" in sources(t), 10 + INTERVAL * 1.1 + 10 + BUSY,
                     what="10.0.1.12 configured after the drip")
        assert traffic_failures(t, ["10.0.1.12"]) == []


def test_hardened_only_switched_on_while_running(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    with serve_metadata(t, tmp_path, tokens="refused", close=True) as svc, \
            configured_daemon(t, tmp_path, service=svc, **POLLING, ready_timeout=30,
                              configured_within=0) as d:
        mark = svc.mark()
        svc.fault(tokens="required")  # token PUTs now work; GETs need one
        t.assign_private_ip("eth1", "10.0.1.12")
        svc.set_document(build_metadata(t))
        d.wait_until(lambda: "10.0.1.12" in sources(t), INTERVAL * 1.1 + BUSY,
                     what="10.0.1.12 configured in hardened-only mode")
        seen = [(r["method"], r["status"]) for r in svc.requests(mark)]
        assert ("GET", 403) in seen and ("PUT", 200) in seen, svc.show()
        assert seen.index(("PUT", 200)) == seen.index(("GET", 403)) + 1, seen
        assert traffic_failures(t, ["10.0.1.12"]) == []


def test_one_listing_without_an_attached_eni_tears_nothing_down(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    with serve_metadata(t, tmp_path) as svc, daemon_for(t, svc, tmp_path, **POLLING) as d:
        d.wait_ready(timeout=30)
        full = build_metadata(t)
        without_eth2 = build_metadata(t, enis=[t.eni("eth1")])
        eth2 = set(t.eni("eth2").ips)
        assert eth2 <= sources(t)

        # one fetch leaves eth2 out (its NIC still attached), the next lists it
        svc.set_document(without_eth2)
        d.wait_log("no longer listed", timeout=INTERVAL * 1.1 + BUSY)
        svc.set_document(full)
        lost = []
        end = time.monotonic() + 5  # past the confirming fetch (2 s later)
        while time.monotonic() < end:
            if not eth2 <= sources(t):
                lost.append(time.monotonic())
            time.sleep(0.05)
        assert lost == [], f"eth2's rules were missing {len(lost)} time(s)\n{describe(t)}"
        assert traffic_failures(t, sorted(eth2)) == []

        # two fetches in a row leave it out: the service means it
        svc.set_document(without_eth2)
        d.wait_until(lambda: not eth2 & sources(t), 2 * INTERVAL * 1.1 + BUSY,
                     what="eth2 torn down after two listings without it")
        assert set(t.eni("eth1").ips) <= sources(t)


def test_default_settings_an_ip_in_20s_at_12_requests_a_minute(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    with serve_metadata(t, tmp_path, all="complete") as svc, \
            daemon_for(t, svc, tmp_path, metadata_interval=None,
                       resync_interval=None) as d:
        d.wait_ready(timeout=30)
        mark = svc.mark()
        t.assign_private_ip("eth2", "10.0.2.12")
        svc.set_document(build_metadata(t))
        assigned = time.monotonic()
        took = d.wait_until(lambda: "10.0.2.12" in sources(t), IP_LIMIT + BUSY,
                            what="10.0.2.12 configured")
        took = time.monotonic() - assigned
        print(f"IP assigned -> configured: {took:.1f}s")
        assert took < IP_LIMIT
        time.sleep(max(0.0, assigned + 60 - time.monotonic()))
        per_minute = [r for r in svc.requests(mark) if r["time"] >= time.time() - 60]
        print(f"requests in a minute at rest: {len(per_minute)}")
        assert 1 <= len(per_minute) <= 12, svc.show()
        assert {r["path"] for r in per_minute} == {ALL_PATH}


def test_over_the_tree_a_poll_rereads_only_what_can_change(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    with serve_metadata(t, tmp_path, all="missing") as svc, \
            daemon_for(t, svc, tmp_path, **POLLING) as d:
        d.wait_ready(timeout=30)
        mark = svc.mark()
        d.wait_until(lambda: len(svc.fetches(mark)) >= 3, 3 * INTERVAL * 1.1 + BUSY,
                     what="three polls")
        starts = svc.fetches(mark)
        one_poll = [r for r in svc.requests(mark) if starts[1] <= r["time"] < starts[2]]
        changing = {f"{MACS}/{eni.mac}/{field}" for eni in (t.eni("eth1"), t.eni("eth2"))
                    for field in ("private-ipv4s", "ipv4-prefixes")}  # (IPv4-only vswitches)
        changing.add(f"{MACS}/{t.primary.mac}/private-ipv4s")  # its secondary IPs, if any
        paths = [r["path"] for r in one_poll]
        print(f"one poll over the tree, 2 ENIs: {len(paths)} requests")
        assert sorted(paths) == sorted([LISTING_PATH, *changing]), svc.show()
