"""Tests of the network-namespace harness itself (no agent involved)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.harness.by_hand import configure_address_only, configure_policy_routing_by_hand
from tests.harness.commands import get_sysctl, ip, netstat_counter, run_in
from tests.harness.enis import PRIMARY_MAC, make_eni
from tests.harness.kernel import guest_state, ip_json, link_by_mac
from tests.harness.metadata import build_metadata, write_metadata
from tests.harness.namespaces import (PREFIX, cleanup_stale_namespaces, create_namespace,
                                      delete_namespace, list_namespaces)
from tests.harness.prober import inbound_handshake, outbound_handshake
from tests.harness.topology import Topology


def rp_drops(topo: Topology) -> int:
    return netstat_counter(topo.router, "IPReversePathFilter")


# -- initial topology -------------------------------------------------------

def test_guest_starts_like_a_dhcp_configured_image(topology_with_eni):
    t = topology_with_eni
    assert all(name.startswith(PREFIX) for name in t.namespaces)
    assert set(t.namespaces) <= set(list_namespaces())

    links = {link["ifname"]: link for link in ip_json(t.guest, "addr")}
    assert set(links) == {"lo", "eth0", "eth1"}
    assert links["eth0"]["address"] == PRIMARY_MAC
    assert [(a["local"], a["prefixlen"]) for a in links["eth0"]["addr_info"]] == [("10.0.0.5", 24)]
    # the ENI is there with its MAC, but DOWN and unconfigured
    assert links["eth1"]["address"] == "00:16:3e:00:01:01"
    assert "UP" not in links["eth1"]["flags"]
    assert links["eth1"]["addr_info"] == []

    main = ip_json(t.guest, "route", "show", "table", "main")
    assert {"dst": "default", "gateway": "10.0.0.253", "dev": "eth0", "protocol": "dhcp",
            "flags": []} in main
    assert any(r["dst"] == "10.0.0.0/24" and r["protocol"] == "kernel" for r in main)
    assert [r["priority"] for r in ip_json(t.guest, "rule")] == [0, 32766, 32767]

    assert get_sysctl(t.router, "net.ipv4.ip_forward") == "1"
    for conf in ("all", "default", "rh", t.primary.router_ifname, t.eni("eth1").router_ifname):
        assert get_sysctl(t.router, f"net.ipv4.conf.{conf}.rp_filter") == "1", conf


def test_run_in_executes_inside_the_namespace(topology_with_eni):
    t = topology_with_eni
    cp = run_in(t.guest, sys.executable, "-c",
                "import socket; print(sorted(n for _, n in socket.if_nameindex()))")
    assert isinstance(cp, subprocess.CompletedProcess)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "['eth0', 'eth1', 'lo']"
    assert run_in(t.guest, "false").returncode == 1  # no exception by default


# -- 1. primary NIC ---------------------------------------------------------

def test_primary_address_reachable_both_ways(topology):
    assert inbound_handshake(topology, "10.0.0.5")
    assert outbound_handshake(topology, "10.0.0.5")


# -- 2. the bug: address without policy routing -------------------------------

def test_address_only_eni_fails_because_router_rp_filter_drops_replies(topology_with_eni):
    t = topology_with_eni
    # Real traffic on the primary NIC first: the guest then has the eth0
    # gateway's MAC cached. Otherwise the guest's ARP request for 10.0.0.253
    # (sent with sender IP 10.0.1.10) is itself dropped by the router's
    # rp_filter and the SYN-ACK never leaves the guest (not counted below).
    assert inbound_handshake(t, "10.0.0.5")
    configure_address_only(t, "eth1")
    before = rp_drops(t)

    assert not inbound_handshake(t, "10.0.1.10")   # SYN-ACK leaves via eth0
    assert not outbound_handshake(t, "10.0.1.10")  # SYN leaves via eth0
    assert rp_drops(t) > before
    assert inbound_handshake(t, "10.0.0.5")  # primary unaffected


def test_address_only_eni_works_when_router_rp_filter_is_off(topology_with_eni):
    """Control experiment: the failure above is due to rp_filter only."""
    t = topology_with_eni
    configure_address_only(t, "eth1")
    t.set_router_rp_filter(0)
    assert inbound_handshake(t, "10.0.1.10")
    assert outbound_handshake(t, "10.0.1.10")


# -- 3. policy routing by hand fixes it ---------------------------------------

def test_policy_routing_by_hand_fixes_one_eni(topology_with_eni):
    t = topology_with_eni
    configure_policy_routing_by_hand(t, "eth1", table=1001)
    assert {"priority": 10000, "src": "10.0.1.10", "table": "1001"} in ip_json(t.guest, "rule")

    before = rp_drops(t)
    assert inbound_handshake(t, "10.0.1.10")
    assert outbound_handshake(t, "10.0.1.10")
    assert inbound_handshake(t, "10.0.0.5")
    assert outbound_handshake(t, "10.0.0.5")
    assert rp_drops(t) == before


@pytest.mark.parametrize("guest_rp_filter", [0, 1, 2])
def test_policy_routing_by_hand_two_enis_with_secondary_ips(topology_factory, guest_rp_filter):
    t = topology_factory([make_eni(1), make_eni(2)], guest_rp_filter=guest_rp_filter)
    configure_policy_routing_by_hand(t, "eth1", table=1001)
    configure_policy_routing_by_hand(t, "eth2", table=1002)

    before = rp_drops(t)
    # The router routes each /32 only to its own ENI and checks sources
    # strictly, so success proves every reply used the right NIC.
    for addr in ("10.0.0.5", "10.0.1.10", "10.0.1.11", "10.0.2.10", "10.0.2.11"):
        assert inbound_handshake(t, addr), addr
        assert outbound_handshake(t, addr), addr
    assert rp_drops(t) == before


# -- 4. teardown --------------------------------------------------------------

def test_context_manager_deletes_namespaces():
    with Topology.create([make_eni(1)]) as t:
        names = t.namespaces
        assert set(names) <= set(list_namespaces())
    assert not set(names) & set(list_namespaces())


def test_namespaces_deleted_when_the_body_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with Topology.create() as t:
            names = t.namespaces
            raise RuntimeError("boom")
    assert not set(names) & set(list_namespaces())


def test_failed_build_leaves_nothing_behind():
    def mine() -> set[str]:  # this process's: other test processes build theirs meanwhile
        return {n for n in list_namespaces() if n.startswith(PREFIX) and f"-{os.getpid()}-" in n}

    before = mine()
    bad = make_eni(1, ifname="x" * 20)  # longer than IFNAMSIZ: `ip link add` fails
    with pytest.raises(subprocess.CalledProcessError):
        Topology.create([bad])
    assert mine() == before


def test_stale_namespace_sweep_spares_live_owners():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{PREFIX}dead00-{dead.pid}-guest"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    mine = create_namespace("sweep")
    try:
        removed = cleanup_stale_namespaces()
        assert stale in removed
        assert mine not in removed
        assert mine in list_namespaces() and stale not in list_namespaces()
    finally:
        delete_namespace(mine)
        delete_namespace(stale)


# -- 5. hotplug / detach --------------------------------------------------------

def test_hotplug_and_detach(topology):
    t = topology
    assert link_by_mac(t.guest, "00:16:3e:00:03:01") is None
    eni = t.add_eni(make_eni(3))

    link = link_by_mac(t.guest, "00:16:3e:00:03:01")
    assert link is not None and link["ifname"] == "eth3"
    assert "UP" not in link["flags"]
    assert ip_json(t.guest, "addr", "show", "dev", "eth3")[0]["addr_info"] == []
    assert t.eni("eth3") is eni

    # the hot-plugged NIC is usable
    configure_policy_routing_by_hand(t, "eth3", table=1003)
    assert inbound_handshake(t, "10.0.3.10")
    assert outbound_handshake(t, "10.0.3.11")

    t.remove_eni("eth3")
    assert link_by_mac(t.guest, "00:16:3e:00:03:01") is None
    assert not any(l["ifname"] == eni.router_ifname for l in ip_json(t.router, "link"))
    assert "eth3" not in t.enis


def test_assign_private_ip_routes_new_address_to_the_eni(topology_with_eni):
    t = topology_with_eni
    t.assign_private_ip("eth1", "10.0.1.12")
    configure_policy_routing_by_hand(t, "eth1", table=1001)
    assert inbound_handshake(t, "10.0.1.12")
    t.unassign_private_ip("eth1", "10.0.1.12")
    assert t.eni("eth1").ips == ("10.0.1.10", "10.0.1.11")
    assert not inbound_handshake(t, "10.0.1.12", timeout=0.5)


# -- snapshots and metadata -----------------------------------------------------

def test_guest_state_is_stable_and_sees_changes(topology_with_eni):
    t = topology_with_eni
    configure_policy_routing_by_hand(t, "eth1", table=1001)
    ip(t.guest, "addr", "add", "10.0.0.6/24", "dev", "eth0", "valid_lft", "300",
       "preferred_lft", "300")  # has lifetimes that tick
    first = guest_state(t)
    assert inbound_handshake(t, "10.0.1.10")  # traffic alone changes nothing
    second = guest_state(t)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)

    assert {"ifname", "address", "flags", "mtu"} <= set(first["links"][0])
    assert any(a["local"] == "10.0.1.10" and a.get("noprefixroute") for a in first["addresses"])
    assert any(r.get("table") == "1001" and r["dst"] == "default" for r in first["routes"])
    assert not any("valid_life_time" in a for a in first["addresses"])

    ip(t.guest, "rule", "add", "from", "10.0.1.11", "lookup", "main", "priority", "10")
    assert guest_state(t) != second


def test_metadata_document_matches_ecs_layout(topology_with_eni, tmp_path):
    doc = build_metadata(topology_with_eni)
    assert doc == {"mac": "00:16:3e:00:00:01", "network": {"interfaces": {"macs": {
        "00:16:3e:00:00:01": {
            "network-interface-id": "eni-primary", "primary-ip-address": "10.0.0.5",
            "private-ipv4s": ["10.0.0.5"], "netmask": "255.255.255.0",
            "gateway": "10.0.0.253", "vswitch-cidr-block": "10.0.0.0/24",
            "vpc-cidr-block": "10.0.0.0/16", "vswitch-id": "vsw-a", "vpc-id": "vpc-a"},
        "00:16:3e:00:01:01": {
            "network-interface-id": "eni-second", "primary-ip-address": "10.0.1.10",
            "private-ipv4s": ["10.0.1.10", "10.0.1.11"], "netmask": "255.255.255.0",
            "gateway": "10.0.1.253", "vswitch-cidr-block": "10.0.1.0/24",
            "vpc-cidr-block": "10.0.0.0/16", "vswitch-id": "vsw-b", "vpc-id": "vpc-a"}}}}}

    path = tmp_path / "metadata.json"
    path.write_text("old")
    path.chmod(0o644)
    assert write_metadata(doc, path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == doc
    assert list(build_metadata(topology_with_eni, enis=[])["network"]["interfaces"]["macs"]) \
        == ["00:16:3e:00:00:01"]
