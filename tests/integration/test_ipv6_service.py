"""IPv6 ENIs described by the metadata service (the stand-in serves `ipv6s`
as `[a,b]`, not JSON, as ECS does; 404 for an ENI without IPv6): `sync
--metadata http://100.100.100.200` converges like a file, with IPv6 traffic
both ways through the ENI, and follows an IPv6 address unassigned."""

from __future__ import annotations

import time

from tests.harness.agent import Agent, assert_one_error_line
from tests.harness.daemon import daemon_for
from tests.harness.enis import make_eni
from tests.harness.expect import ipv6_problems
from tests.harness.kernel import (dumps, global6, guest_state, owned_rules6, routes6, settle_ipv6,
                                  table_of)
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import assert_traffic, assert_traffic6
from tests.harness.topology import ipv6_topology

META = "/latest/meta-data/network/interfaces/macs"


def test_ipv6_enis_from_the_service_converge(topology_factory, tmp_path):
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2), make_eni(2)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, build_metadata(t)) as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.states() == {"eth1": "configured", "eth2": "configured"}
        answers = {r["path"]: r["status"] for r in svc.requests()}
        assert answers[f"{META}/00:16:3e:00:01:01/ipv6s"] == 200
        # no IPv6 in eth2's vswitch: its ipv6s are not even asked for
        assert answers.get(f"{META}/00:16:3e:00:02:01/ipv6s", 404) == 404
        assert ipv6_problems(t, "eth1") == [], ipv6_problems(t, "eth1")
        assert global6(t, "eth2") == {} and routes6(t, table_of(t, "eth2")) == []
        assert_traffic6(t, ["2001:db8:1::10", "2001:db8:1::11", "2001:db8::5"])
        assert_traffic(t, ["10.0.1.10", "10.0.2.10"])

        settle_ipv6(t)
        state = dumps(guest_state(t))
        again = agent.sync("--json", metadata=svc.url)
        assert again.code == 0 and again.states() == {"eth1": "in-sync", "eth2": "in-sync"}
        assert dumps(guest_state(t)) == state

        # The cloud unassigns one IPv6 address: the service stops listing it.
        t.unassign_private_ip("eth1", "2001:db8:1::11")
        svc.set_document(build_metadata(t))
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, str(res)
        assert set(global6(t, "eth1")) == {"2001:db8:1::10"}
        assert [r["src"] for r in owned_rules6(t)] == ["2001:db8:1::10"]
        assert ipv6_problems(t, "eth1") == []
        assert_traffic6(t, ["2001:db8:1::10"])


def test_ipv6_answers_cut_short_or_refused_change_nothing(topology_factory, tmp_path):
    """Faults on the IPv6 fields: a truncated `[a,b]`, a 500 on them: exit 5,
    the configured IPv6 untouched."""
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        settle_ipv6(t)
        converged = dumps(guest_state(t))
        for control, code, needle in (
                ({"truncate": True}, 5, "metadata service"),
                ({"status": 500}, 5, "HTTP 500"),
                # ipv6s served, the CIDR or the gateway answering 404: an incomplete
                # answer from the service (a file missing it would be invalid, exit 4)
                ({"not_found": "ipv6-gateway"}, 5, "ipv6-gateway"),
                ({"not_found": "vswitch-ipv6-cidr-block"}, 5, "vswitch-ipv6-cidr-block")):
            svc.fault(**control)
            line = assert_one_error_line(agent.sync(metadata=svc.url), code)
            assert needle in line, (control, line)
            assert dumps(guest_state(t)) == converged, control
        svc.clear()
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.states() == {"eth1": "in-sync"}


HOTPLUG_LIMIT = 5.0  # seconds from the attach to the ENI configured


def test_daemon_configures_a_hot_plugged_ipv6_eni_the_service_lists(topology_factory, tmp_path):
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=1)])
    eni2 = make_eni(2, n_ipv6=2)
    with serve_metadata(t, tmp_path) as svc, daemon_for(t, svc, tmp_path) as d:
        d.wait_ready(timeout=30)
        assert ipv6_problems(t, "eth1") == []
        d.wait_until(lambda: svc.fetches() and time.time() - svc.fetches()[-1] > 2.3, 10,
                     what="2 s since the last fetch")
        svc.set_document(build_metadata(t, enis=[*t.enis.values(), eni2]))
        t.add_eni(eni2)
        took = d.wait_until(lambda: not ipv6_problems(t, "eth2"), HOTPLUG_LIMIT + 10,
                            what="eth2's IPv6 configured")
        print(f"IPv6 ENI hotplug -> configured: {took:.3f}s")
        assert took < HOTPLUG_LIMIT
        assert_traffic6(t, ["2001:db8:1::10", "2001:db8:2::10", "2001:db8:2::11"])
        assert_traffic(t, ["10.0.2.10"])


def test_a_single_404_on_ipv6s_does_not_remove_ipv6(topology_factory, tmp_path):
    """`ipv6s` answering 404 while the CIDR and gateway are served means "no
    IPv6 address" in the service's format; one blip of it must not remove the
    ENI's IPv6: the reader asks once more."""
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        settle_ipv6(t)
        converged = dumps(guest_state(t))
        mark = svc.mark()
        svc.fault(not_found_once=f"{t.eni('eth1').mac}/ipv6s")
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.states() == {"eth1": "in-sync"}, str(res)
        assert dumps(guest_state(t)) == converged
        asked = [r["status"] for r in svc.requests(mark)
                 if r["path"].endswith(f"{t.eni('eth1').mac}/ipv6s")]
        assert asked == [404, 200], asked
