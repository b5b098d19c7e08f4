"""`eni-agent daemon --metadata http://100.100.100.200` against the stand-in
ECS metadata service (with --require-token) in the router namespace.

The daemon polls the service every `metadata_interval` (5 s here, the
minimum), retries at most 10 s after a failed fetch, and fetches at once when
a NIC it does not know appears (then in a burst until it is listed: see
test_service_daemon_failover.py). A failing service never changes anything;
an ENI attached meanwhile is configured when the service recovers; a
hot-plugged ENI the service lists is configured within seconds; a daemon
started while the service fails is READY within 15 s all the same.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.harness.commands import run_in
from tests.harness.daemon import configured_daemon, daemon_for
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe, guest_state, ip_json, owned_rules
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import traffic_failures

METADATA_INTERVAL = 5  # the config's minimum
FETCH_GAP = 2.0  # daemon.FETCH_GAP: at most one fetch this often for unknown NICs
FETCH_RETRY = 10.0  # daemon.FETCH_RETRY: after a failed fetch
HOTPLUG_LIMIT = 5.0
BUSY = 10.0  # slack for a busy 2-core machine


def wait_fetches(svc, d, since: int, count: int, timeout: float) -> list[float]:
    """Wait until the server has seen ``count`` fetches (GET .../mac) since ``since``."""
    d.wait_until(lambda: len(svc.fetches(since)) >= count, timeout,
                 what=f"{count} metadata fetch(es)")
    return svc.fetches(since)


def test_daemon_rides_out_a_failing_service_and_follows_attach_hotplug_detach(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    eni2, eni3 = make_eni(2), make_eni(3)
    with serve_metadata(t, tmp_path) as svc, \
            configured_daemon(t, tmp_path, service=svc, ready_timeout=30,
                              configured_within=0) as d:
        ready = d.wait_ready()
        assert ready.fields["STATUS"].startswith("converged: 1 in sync"), ready.fields
        assert traffic_failures(t, ["10.0.0.5", *t.eni("eth1").ips]) == []

        # -- polls reuse one token --------------------------------------------
        mark = svc.mark()
        wait_fetches(svc, d, mark, 2, 2 * METADATA_INTERVAL * 1.1 + BUSY)
        seen = svc.requests(mark)
        assert [r for r in seen if r["method"] == "PUT"] == [], "the token was not reused"
        assert {r["status"] for r in seen} <= {200, 404}, seen

        # -- revoked tokens: renewed at the next poll, nothing logged as a failure
        mark = svc.mark()
        complaints = len(d.log_lines("metadata service"))
        svc.fault(expire_tokens=1)

        def statuses() -> list[tuple[str, int]]:
            return [(r["method"], r["status"]) for r in svc.requests(mark)]

        def renewed() -> bool:  # a 401 (all tokens revoked), a new token, a GET that works
            seen = statuses()
            first = seen.index(("GET", 401)) if ("GET", 401) in seen else len(seen)
            # The revocation may land mid-fetch, on a field that is absent (ipv6s):
            # the retried GET then answers 404, which is as good as 200 here.
            return (seen[first:first + 2] == [("GET", 401), ("PUT", 200)]
                    and len(seen) > first + 2 and seen[first + 2] in (("GET", 200), ("GET", 404)))

        d.wait_until(renewed, METADATA_INTERVAL * 1.1 + BUSY, what="the token renewed")
        wait_fetches(svc, d, svc.mark(), 1, METADATA_INTERVAL * 1.1 + BUSY)  # and the next poll
        assert statuses().count(("GET", 401)) == 1, statuses()
        assert statuses().count(("PUT", 200)) == 1, statuses()
        assert len(d.log_lines("metadata service")) == complaints, d.log_lines("metadata service")
        svc.clear()

        # -- the service fails: nothing changes, the daemon lives and says so ---
        state = guest_state(t)
        mark = svc.mark()
        warnings_before = len(d.log_lines("HTTP 500"))
        svc.fault(status=500)
        # the next poll fails, and the retry FETCH_RETRY later too
        d.wait_log("HTTP 500", timeout=METADATA_INTERVAL * 1.1 + FETCH_RETRY * 1.1 + 2 * BUSY,
                   count=warnings_before + 2)
        failures = [line for line in d.log_lines("HTTP 500")][warnings_before:]
        assert all("keeping the last good document" in line for line in failures), failures
        assert d.alive()
        assert guest_state(t) == state, describe(t)
        # the cached token is reused: each failed fetch is GETs of .../all answered 500
        assert len([r for r in svc.requests(mark)
                    if r["status"] == 500 and r["path"].endswith("/all")]) >= 2

        # -- an ENI attached while the service fails: its NIC appears, the fetch
        # it triggers fails too; it stays unconfigured, everything else intact
        svc.set_document(build_metadata(t, enis=[*t.enis.values(), eni2]))
        t.add_eni(eni2)
        time.sleep(3)
        assert eni_problems(t, t.eni("eth1")) == []
        assert eni_problems(t, t.eni("eth2")) != []
        assert not {"10.0.2.10", "10.0.2.11"} & {r.get("src") for r in owned_rules(t)}
        assert d.alive()

        # -- the service recovers and lists it: configured at the next poll -----
        svc.clear()
        took = d.wait_until(lambda: not eni_problems(t, t.eni("eth2")),
                            FETCH_RETRY * 1.2 + BUSY, what="eth2 configured after recovery")
        print(f"service recovered -> attached eth2 configured: {took:.2f}s")
        assert traffic_failures(t, t.eni("eth2").ips) == []
        assert eni_problems(t, t.eni("eth1")) == []

        # -- hotplug of an ENI the service already lists: the daemon fetches when
        # the unknown NIC appears, not at the next poll
        mark = svc.mark()
        last = wait_fetches(svc, d, mark, 1, METADATA_INTERVAL * 1.1 + BUSY)[-1]
        time.sleep(max(0.0, last + FETCH_GAP + 0.3 - time.time()))
        svc.set_document(build_metadata(t, enis=[*t.enis.values(), eni3]))
        mark = svc.mark()
        plugged_at = time.time()
        t.add_eni(eni3)
        took = d.wait_until(lambda: not eni_problems(t, t.eni("eth3")), HOTPLUG_LIMIT + BUSY,
                            what="eth3 configured after hotplug")
        fetch_delay = svc.fetches(mark)[0] - plugged_at
        print(f"hotplug -> fetch started {fetch_delay:.3f}s, -> eth3 configured {took:.3f}s")
        # the fetch that configured it was the hotplug's, not the next poll's
        # (the pass logs its changes after verifying them: the kernel may be first)
        d.wait_until(lambda: any("metadata fetched after" in line for line in d.log_lines("eth3")),
                     2.0, what="the pass's log lines")
        why = [line for line in d.log_lines("eth3") if "metadata fetched after" in line]
        assert why and all("unknown NIC appeared" in line and "metadata poll" not in line
                           for line in why), d.log_lines("eth3")
        assert traffic_failures(t, t.eni("eth3").ips) == []

        # -- detach: gone from the service and its NIC removed -> cleaned up ---
        svc.set_document(build_metadata(t, enis=[t.eni("eth1"), t.eni("eth2")]))
        table3 = 10000 + ip_json(t.guest, "link", "show", "dev", "eth3")[0]["ifindex"]
        t.remove_eni("eth3")
        d.wait_until(lambda: not {"10.0.3.10", "10.0.3.11"} & {r.get("src") for r in owned_rules(t)},
                     METADATA_INTERVAL * 1.1 + BUSY, what="eth3's rules removed")
        assert not [r for r in ip_json(t.guest, "route", "show", "table", "all")
                    if r.get("table") == str(table3)]
        for name in ("eth1", "eth2"):
            assert eni_problems(t, t.eni(name)) == [], describe(t)
        assert traffic_failures(t, ["10.0.0.5", *t.eni("eth1").ips, *t.eni("eth2").ips]) == []
        # and the next poll (eth3 no longer listed) agrees: nothing to do
        mark = svc.mark()
        wait_fetches(svc, d, mark, 1, METADATA_INTERVAL * 1.1 + BUSY)
        time.sleep(1)
        assert {r.get("src") for r in owned_rules(t)} == {*t.eni("eth1").ips, *t.eni("eth2").ips}
        assert d.alive()


READY_LIMIT = 15.0  # issue 11 §4: READY=1 within 15 s, metadata or not


@pytest.mark.parametrize("control", [{"status": 503}, {"hang": True}],
                         ids=["503", "unreachable"])
def test_daemon_starting_while_the_service_fails_is_ready_waiting_then_configures(
        topology_factory, tmp_path, control):
    """Boot never waits on metadata (this used to withhold READY=1, and systemd
    killed the daemon after 90 s): READY=1 within 15 s saying what it waits
    for, nothing changed meanwhile, the ENIs configured when the service answers."""
    t = topology_factory([make_eni(1)])
    with serve_metadata(t, tmp_path) as svc:
        svc.fault(**control)
        before = guest_state(t)
        with daemon_for(t, svc, tmp_path) as d:
            ready = d.wait_ready(timeout=READY_LIMIT + BUSY)
            print(f"READY without metadata after {ready.at - d.started_at:.2f}s: "
                  f"{ready.fields['STATUS']!r}")
            assert ready.at - d.started_at < READY_LIMIT + 2, "READY=1 came too late"
            assert ready.fields["STATUS"].startswith("waiting for metadata: "), ready.fields
            if "status" in control:
                assert "HTTP 503" in ready.fields["STATUS"]
            assert guest_state(t) == before
            assert d.alive()
            svc.clear()
            # retried at most FETCH_RETRY apart (plus a hung fetch's deadline)
            d.wait_until(lambda: not eni_problems(t, t.eni("eth1")),
                         FETCH_RETRY * 1.2 + 15 + BUSY, what="eth1 configured after recovery")
            assert traffic_failures(t, t.eni("eth1").ips) == []
            d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith(
                "converged: 1 in sync"), timeout=BUSY)
            assert len(d.messages("READY")) == 1


def test_two_enis_attached_a_second_apart_are_both_configured_promptly(
        topology_factory, tmp_path):
    t = topology_factory()
    eni1, eni2 = make_eni(1), make_eni(2)
    with serve_metadata(t, tmp_path, build_metadata(t)) as svc, \
            daemon_for(t, svc, tmp_path, metadata_interval=60) as d:
        d.wait_ready(timeout=30)
        time.sleep(FETCH_GAP + 0.5)  # the start-up fetch is long past
        # the cloud attaches eni1: listed, then its NIC appears
        svc.set_document(build_metadata(t, enis=[eni1]))
        t.add_eni(eni1)
        took1 = d.wait_until(lambda: not eni_problems(t, t.eni("eth1")), HOTPLUG_LIMIT + BUSY,
                             what="eth1 configured")
        # ... and a moment later eni2
        time.sleep(0.5)
        svc.set_document(build_metadata(t, enis=[eni1, eni2]))
        t.add_eni(eni2)
        # bounded well below the 60 s poll: eth2 is not left for the next poll
        took2 = d.wait_until(lambda: not eni_problems(t, t.eni("eth2")), HOTPLUG_LIMIT + BUSY,
                             what="eth2 configured")
        print(f"hotplug -> configured: eth1 {took1:.2f}s, eth2 {took2:.2f}s")


def test_sigterm_during_a_hanging_fetch_exits_promptly(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    with serve_metadata(t, tmp_path) as svc, daemon_for(t, svc, tmp_path) as d:
        d.wait_ready(timeout=30)
        svc.fault(hang=True)

        def fetch_hanging() -> bool:  # the daemon's connection to the service is open
            cp = run_in(t.router, "ss", "-Htn", "state", "established", "( sport = :80 )")
            return bool(cp.stdout.strip())

        d.wait_until(fetch_hanging, METADATA_INTERVAL * 1.1 + BUSY, what="a hung fetch")
        time.sleep(0.5)
        start = time.monotonic()
        d.send_signal(signal.SIGTERM)
        # bounded below the hung fetch's own 10 s deadline: it was not waited for
        code = d.wait_exit(timeout=8)
        took = time.monotonic() - start
        print(f"SIGTERM during a hanging fetch: exit {code} after {took:.2f}s")
        assert code == 0
