"""Detach and re-attach under a running daemon: the rules of a vanished NIC
are removed at once (they would shadow a re-attached ENI), even though the
metadata still lists it; on re-attach the ENI is configured again, with the
table of its new ifindex."""

from __future__ import annotations

from tests.harness.daemon import configured_daemon
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems, eni_table
from tests.harness.kernel import ip_json, owned_rules, table_routes
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures

TIMEOUT = 3.0  # seconds; both typically take ~0.1 s


def test_detach_removes_rules_and_reattach_configures_the_new_link(topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    eni = t.eni("eth1")
    other = t.eni("eth2")
    path = metadata_file(tmp_path, build_metadata(t))  # lists both, throughout the test
    with configured_daemon(t, tmp_path, path, configured_within=0) as d:  # eth1 and eth2
        old_table = eni_table(t, eni)

        t.remove_eni("eth1")
        took = d.wait_until(
            lambda: not any(r.get("src") in eni.ips for r in ip_json(t.guest, "rule")),
            TIMEOUT, what="the detached ENI's rules removed")
        print(f"detach -> rules removed in {took:.3f}s")
        assert {r["table"] for r in owned_rules(t)} == {str(eni_table(t, other))}
        assert table_routes(t, old_table) == []
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith(
            "converged: 1 in sync, 1 pending"))
        assert eni_problems(t, other) == []  # the other ENI is untouched
        assert traffic_failures(t, other.ips[:1]) == []

        again = t.add_eni(make_eni(1))  # same MAC and IPs, a new link
        took = d.wait_until(lambda: not eni_problems(t, again), TIMEOUT,
                            what="the re-attached ENI configured")
        print(f"re-attach -> configured in {took:.3f}s")
        new_table = eni_table(t, again)
        assert new_table != old_table  # a new ifindex, and the rules follow it
        assert {r["table"] for r in owned_rules(t) if r["src"] in again.ips} == {str(new_table)}
        assert traffic_failures(t, again.ips) == []
        assert d.alive()
