"""The document or the NICs change between two syncs: IPs dropped, added or
moved, a gateway changed, an ENI detached / re-attached / dropped from the
document, an ENI listed before its NIC appears."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.commands import ip
from tests.harness.enis import Eni, make_eni
from tests.harness.expect import expected_rules, expected_table, sorted_rules
from tests.harness.kernel import (address_ips, ip_json, link_by_mac, owned_routes, owned_rules,
                                  routes_in_table, rule_sources, table_of, table_routes)
from tests.harness.metadata import build_metadata
from tests.harness.prober import (FAIL_TIMEOUT, answers_on_any_address, assert_traffic, eni_ips,
                                  inbound_handshake)

ETH1_MAC = "00:16:3e:00:01:01"
ETH2_MAC = "00:16:3e:00:02:01"


def _macs(doc: dict) -> dict:
    return doc["network"]["interfaces"]["macs"]


def test_ip_dropped_from_the_document_loses_its_address_and_rule_and_stops_answering(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")
    assert answers_on_any_address(t, "10.0.1.11")  # the probe below can succeed

    doc = build_metadata(t)
    _macs(doc)[ETH1_MAC]["private-ipv4s"] = ["10.0.1.10"]
    agent.write(doc)
    res = agent.converge()

    assert res.eni("eth1")["changes"] == [f"remove rule 10000: from 10.0.1.11 lookup {t1}",
                                          "remove address 10.0.1.11/24 dev eth1"]
    assert res.eni("eth2")["state"] == "in-sync"
    assert address_ips(t, "eth1") == ["10.0.1.10"]
    assert "10.0.1.11" not in rule_sources(t)
    assert sorted_rules(owned_rules(t)) == sorted_rules(
        expected_rules(["10.0.1.10"], t1) + expected_rules(t.eni("eth2").ips, table_of(t, "eth2")))
    assert table_routes(t, t1) == expected_table(t.eni("eth1"))
    # the router still sends 10.0.1.11 to eth1, but the guest no longer answers
    assert not answers_on_any_address(t, "10.0.1.11")
    assert not inbound_handshake(t, "10.0.1.11", timeout=FAIL_TIMEOUT)
    assert_traffic(t, ["10.0.0.5", "10.0.1.10", *eni_ips(t, "eth2")])


def test_dropping_the_first_address_of_an_eni_keeps_its_other_addresses(topology_factory,
                                                                          tmp_path):
    # 10.0.1.10 is the kernel's primary address of the subnet on eth1: without
    # promote_secondaries, deleting it would delete 10.0.1.11 and .12 too
    t = topology_factory([make_eni(1, n_ips=3)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")

    doc = build_metadata(t)
    _macs(doc)[ETH1_MAC].update({"primary-ip-address": "10.0.1.11",
                                 "private-ipv4s": ["10.0.1.11", "10.0.1.12"]})
    agent.write(doc)
    res = agent.converge()

    assert res.eni("eth1")["changes"] == [f"remove rule 10000: from 10.0.1.10 lookup {t1}",
                                          "remove address 10.0.1.10/24 dev eth1"]
    assert address_ips(t, "eth1") == ["10.0.1.11", "10.0.1.12"]
    assert_traffic(t, ["10.0.1.11", "10.0.1.12"])


def test_ip_assigned_in_the_cloud_is_added_by_the_next_sync(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")

    t.assign_private_ip("eth1", "10.0.1.12")
    agent.write()
    res = agent.converge()

    assert res.eni("eth1")["changes"] == ["add address 10.0.1.12/24 dev eth1",
                                          f"add rule 10000: from 10.0.1.12 lookup {t1}"]
    assert sorted_rules(owned_rules(t)) == sorted_rules(
        expected_rules(["10.0.1.10", "10.0.1.11", "10.0.1.12"], t1))
    assert_traffic(t, ["10.0.1.10", "10.0.1.11", "10.0.1.12"])


def test_gateway_change_replaces_the_default_route_of_the_eni_table(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1 = table_of(t, "eth1")

    # the vswitch gets a new gateway address
    ip(t.router, "addr", "add", "10.0.1.254/24", "dev", t.eni("eth1").router_ifname,
       "noprefixroute")
    doc = build_metadata(t)
    _macs(doc)[ETH1_MAC]["gateway"] = "10.0.1.254"
    agent.write(doc)
    res = agent.converge()

    assert res.eni("eth1")["changes"] == [
        f"replace route default via 10.0.1.254 dev eth1 table {t1}"]
    assert [r for r in table_routes(t, t1) if r["dst"] == "default"] == [
        {"dst": "default", "gateway": "10.0.1.254", "dev": "eth1", "protocol": "234",
         "flags": ["onlink"]}]
    assert_traffic(t, ["10.0.1.10", "10.0.1.11"])
    # the outbound probes went through the new gateway
    assert "10.0.1.254" in {n["dst"] for n in ip_json(t.guest, "neigh", "show", "dev", "eth1")}


def test_new_table_base_moves_every_route_and_rule_to_the_new_band(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    old = table_of(t, "eth1")

    res = agent.converge("--table-base", 20000)

    new = table_of(t, "eth1", base=20000)
    assert res.eni("eth1")["table"] == new
    assert sorted_rules(owned_rules(t)) == sorted_rules(expected_rules(t.eni("eth1").ips, new))
    assert table_routes(t, new) == expected_table(t.eni("eth1"))
    assert routes_in_table(t, old) == []
    assert_traffic(t, ["10.0.1.10", "10.0.1.11"])


def test_ip_moved_between_two_enis_of_one_vswitch_follows_its_eni(topology_factory, tmp_path):
    sibling = Eni(ETH2_MAC, "eth2", "10.0.1.0/24", "10.0.1.253", ("10.0.1.20",),
                  eni_id="eni-sibling")
    t = topology_factory([make_eni(1), sibling])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1, t2 = table_of(t, "eth1"), table_of(t, "eth2")

    t.unassign_private_ip("eth1", "10.0.1.11")
    t.assign_private_ip("eth2", "10.0.1.11")
    agent.write()
    res = agent.converge()

    assert res.states() == {"eth1": "configured", "eth2": "configured"}
    assert address_ips(t, "eth1") == ["10.0.1.10"]
    assert address_ips(t, "eth2") == ["10.0.1.20", "10.0.1.11"]
    assert sorted_rules(owned_rules(t)) == sorted_rules(
        expected_rules(["10.0.1.10"], t1) + expected_rules(["10.0.1.20", "10.0.1.11"], t2))
    assert_traffic(t, ["10.0.1.10", "10.0.1.11", "10.0.1.20"])


def test_detached_eni_leaves_no_rule_or_route_and_a_reattached_one_is_configured_afresh(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1, t2 = table_of(t, "eth1"), table_of(t, "eth2")

    t.remove_eni("eth2")  # the metadata still lists it (it lags behind)
    res = agent.converge()

    assert res.eni(ETH2_MAC)["state"] == "pending"
    assert res.eni("eth1")["state"] == "in-sync"
    assert sorted(res.json["other_changes"]) == sorted(
        f"remove rule 10000: from {a} lookup {t2}" for a in ("10.0.2.10", "10.0.2.11"))
    assert not {"10.0.2.10", "10.0.2.11"} & rule_sources(t)
    assert routes_in_table(t, t2) == []
    assert sorted_rules(owned_rules(t)) == sorted_rules(expected_rules(t.eni("eth1").ips, t1))
    assert {r["dev"] for r in owned_routes(t)} == {"eth1"}
    assert_traffic(t, ["10.0.0.5", *eni_ips(t, "eth1")])

    # re-attached: a new link (new ifindex), configured with its own table
    t.add_eni(make_eni(2))
    res = agent.converge()
    new_t2 = table_of(t, "eth2")
    assert res.states() == {"eth1": "in-sync", "eth2": "configured"}
    assert res.eni("eth2")["table"] == new_t2
    assert sorted_rules(owned_rules(t)) == sorted_rules(
        expected_rules(t.eni("eth1").ips, t1) + expected_rules(t.eni("eth2").ips, new_t2))
    assert_traffic(t, eni_ips(t))


def test_eni_dropped_from_the_document_loses_its_addresses_rules_and_routes(topology_factory,
                                                                            tmp_path):
    t = topology_factory([make_eni(1), make_eni(2)])
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    t1, t2 = table_of(t, "eth1"), table_of(t, "eth2")

    agent.write(build_metadata(t, enis=[t.eni("eth1")]))
    res = agent.converge()

    assert [e["link"] for e in res.json["enis"]] == ["eth1"]
    assert res.eni("eth1")["state"] == "in-sync"
    assert len(res.json["other_changes"]) == 6  # 2 rules, 2 routes, 2 addresses
    assert address_ips(t, "eth2") == []
    assert not {"10.0.2.10", "10.0.2.11"} & rule_sources(t)
    assert routes_in_table(t, t2) == []
    assert sorted_rules(owned_rules(t)) == sorted_rules(expected_rules(t.eni("eth1").ips, t1))
    assert_traffic(t, ["10.0.0.5", *eni_ips(t, "eth1")])
    assert not answers_on_any_address(t, "10.0.2.10")


def test_eni_listed_before_its_nic_appears_is_pending_then_configured(topology_with_eni,
                                                                      tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write(build_metadata(t, enis=[t.eni("eth1"), make_eni(2)]))

    res = agent.converge()  # pending is not a failure: exit 0

    assert res.eni("eth1")["state"] == "configured"
    pending = res.eni(ETH2_MAC)
    assert (pending["state"], pending["link"], pending["changes"]) == ("pending", None, [])
    assert link_by_mac(t.guest, ETH2_MAC) is None
    assert not {"10.0.2.10", "10.0.2.11"} & rule_sources(t)
    text = agent.sync()
    assert "eni-third 00:16:3e:00:02:01: pending (no link with this MAC yet)" in \
        text.stdout.splitlines(), str(text)

    t.add_eni(make_eni(2))  # hotplug
    res = agent.converge()

    assert res.states() == {"eth1": "in-sync", "eth2": "configured"}
    assert table_routes(t, table_of(t, "eth2")) == expected_table(t.eni("eth2"))
    assert_traffic(t, ["10.0.0.5", *eni_ips(t)])
