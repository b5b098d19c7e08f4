"""The primary ENI's secondary private IPs go on the primary NIC, marked and
`noprefixroute`, and answer from beyond the strict-rp_filter router with no
policy rule (main's default already leaves through eth0); nothing else on
the primary changes; `cleanup` removes only them; a thin entry or a metadata
failure removes nothing; `primary_secondary_ips = false` lets them go; an
address another NIC holds is never added."""

from __future__ import annotations

import time

from tests.harness.agent import Agent, write_config
from tests.harness.commands import ip
from tests.harness.daemon import run_daemon
from tests.harness.enis import HOST_IPV6, PRIMARY_MAC, make_eni, primary_eni
from tests.harness.kernel import (address_ips, address_protocols, addresses, dumps, ip_json,
                                  main_routes, rule_sources)
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import inbound_handshake, outbound_handshake

SECONDARY = "10.0.0.6"


def _primary_as_the_image_left_it(t) -> str:
    """eth0's addresses other than the agent's, main's routes (IPv4 and IPv6)
    other than the agent's (an ENI's vswitch route, `subnet_routes`)."""
    eth0 = [a for a in addresses(t, "eth0") if a["local"] != SECONDARY]
    main6 = ip_json(t.guest, "-6", "route", "show", "table", "main")
    return dumps({"eth0": eth0, "main": [r for r in main_routes(t) if not _agents(r)],
                  "main6": [r for r in main6 if not _agents(r)]})


def _agents(route: dict) -> bool:
    return str(route.get("protocol")) in ("234", "eni-agent")


def _configured(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    before = _primary_as_the_image_left_it(t)
    t.assign_private_ip("eth0", SECONDARY)  # AssignPrivateIpAddresses on the primary ENI
    agent.write()
    res = agent.sync("--json")
    assert res.code == 0, str(res)
    return t, agent, before, res


def test_a_secondary_ip_of_the_primary_answers_and_nothing_else_changes(topology_factory,
                                                                        tmp_path):
    t, agent, before, res = _configured(topology_factory, tmp_path)

    assert res.json["primary"]["addresses"] == [SECONDARY], str(res)
    assert res.json["primary"]["state"] == "configured"
    assert address_protocols(t)[f"eth0 {SECONDARY}/24"] == 234
    (mine,) = [a for a in addresses(t, "eth0") if a["local"] == SECONDARY]
    assert mine.get("noprefixroute") is True and mine.get("secondary") is True, mine
    assert SECONDARY not in rule_sources(t)  # no policy rule: main routes it out of eth0
    assert _primary_as_the_image_left_it(t) == before
    assert inbound_handshake(t, SECONDARY) and outbound_handshake(t, SECONDARY)
    assert inbound_handshake(t, "10.0.0.5") and outbound_handshake(t, "10.0.0.5")
    # new connections still leave from the DHCP address
    assert ip_json(t.guest, "route", "get", "192.168.100.2")[0]["prefsrc"] == "10.0.0.5"

    status = agent.status()
    assert status.code == 0 and f"secondary IPs: {SECONDARY}" in status.stdout, str(status)
    assert agent.sync("--json").json["primary"]["changes"] == []

    cleanup = agent.cleanup()
    assert cleanup.code == 0, str(cleanup)
    assert SECONDARY not in address_ips(t, "eth0")
    assert _primary_as_the_image_left_it(t) == before
    assert inbound_handshake(t, "10.0.0.5")


def test_a_thin_entry_or_a_metadata_failure_removes_nothing(topology_factory, tmp_path):
    t, agent, _, _ = _configured(topology_factory, tmp_path)

    thin = build_metadata(t)
    thin["network"]["interfaces"]["macs"][PRIMARY_MAC] = {"mac": PRIMARY_MAC}
    res = agent.sync("--json", metadata=agent.write(thin))
    assert res.code == 0 and SECONDARY in address_ips(t, "eth0"), str(res)

    gone = agent.sync(metadata=tmp_path / "no-such-file.json")
    assert gone.code != 0, str(gone)
    assert SECONDARY in address_ips(t, "eth0")
    assert inbound_handshake(t, SECONDARY)


def test_unassigned_it_goes_and_turned_off_they_go(topology_factory, tmp_path):
    t, agent, before, _ = _configured(topology_factory, tmp_path)
    off = write_config(tmp_path / "off.toml", "primary_secondary_ips = false\n")

    res = agent.run("sync", "--config", off, "--metadata", agent.metadata)
    assert res.code == 0 and SECONDARY not in address_ips(t, "eth0"), str(res)
    assert _primary_as_the_image_left_it(t) == before

    agent.converge()
    assert SECONDARY in address_ips(t, "eth0")
    t.unassign_private_ip("eth0", SECONDARY)
    agent.write()
    agent.converge()
    assert SECONDARY not in address_ips(t, "eth0")
    assert _primary_as_the_image_left_it(t) == before


def test_a_secondary_ip_another_nic_holds_is_not_added(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    ip(t.guest, "addr", "add", f"{SECONDARY}/32", "dev", "lo")  # a VIP an operator put there
    t.assign_private_ip("eth0", SECONDARY)
    agent.write()

    res = agent.sync("--json")

    assert res.code == 4, str(res)
    (line,) = res.stderr.splitlines()
    assert f"private-ipv4s: {SECONDARY} is already an address of lo" in line, line
    assert SECONDARY not in address_ips(t, "eth0")
    assert res.states() == {"eth1": "configured"}


def test_an_ipv6_secondary_ip_answers_and_the_primarys_source_stays(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)], ipv6=True, primary=primary_eni(ipv6=True))
    agent = Agent(t, tmp_path)
    source = ip_json(t.guest, "-6", "route", "get", HOST_IPV6)[0]["prefsrc"]
    t.assign_private_ip("eth0", "2001:db8::6")
    agent.write()

    res = agent.sync("--json")

    assert res.code == 0 and "2001:db8::6" in res.json["primary"]["addresses"], str(res)
    (mine,) = [a for a in ip_json(t.guest, "-6", "addr", "show", "dev", "eth0")[0]["addr_info"]
               if a["local"] == "2001:db8::6"]
    assert mine.get("noprefixroute") and mine.get("deprecated"), mine
    assert inbound_handshake(t, "2001:db8::6") and outbound_handshake(t, "2001:db8::6")
    # new connections still leave from the image's address, not the newest one
    assert ip_json(t.guest, "-6", "route", "get", HOST_IPV6)[0]["prefsrc"] == source \
        == "2001:db8::5"
    assert agent.sync("--json").json["primary"]["changes"] == []


def test_the_daemon_adds_them_and_puts_back_one_another_tool_removed(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    t.assign_private_ip("eth0", SECONDARY)
    metadata = Agent(t, tmp_path).write()
    with run_daemon(t, metadata, tmp_path) as d:
        d.wait_ready()
        d.wait_until(lambda: SECONDARY in address_ips(t, "eth0"), timeout=10)
        ip(t.guest, "addr", "del", f"{SECONDARY}/24", "dev", "eth0")  # networkd reconfiguring
        removed = time.monotonic()
        d.wait_until(lambda: SECONDARY in address_ips(t, "eth0"), timeout=5)
        print(f"re-added {time.monotonic() - removed:.3f} s after its removal")
        assert inbound_handshake(t, SECONDARY)


def test_read_from_the_metadata_service_too_and_a_primary_not_answered_removes_nothing(
        topology_factory, tmp_path):
    """On ECS the agent reads the service (the default): the primary's
    `private-ipv4s` is read there after the ENIs'. Where the service does not
    answer the primary whole, the ENIs are configured and the primary keeps
    what it holds."""
    t = topology_factory([make_eni(1)])
    t.assign_private_ip("eth0", SECONDARY)
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, all="missing") as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.json["primary"]["addresses"] == [SECONDARY], str(res)
        gets = [r["path"] for r in svc.requests() if r["method"] == "GET"]
        primary_reads = [p for p in gets if f"/{PRIMARY_MAC}/" in p]
        assert f"/latest/meta-data/network/interfaces/macs/{PRIMARY_MAC}/private-ipv4s" \
            in primary_reads, gets
        assert not [p for p in primary_reads if "prefixes" in p], primary_reads
        assert inbound_handshake(t, SECONDARY) and outbound_handshake(t, SECONDARY)

        svc.fault(not_found=f"{PRIMARY_MAC}/private-ipv4s")
        again = agent.sync("--json", metadata=svc.url)
        assert again.code == 0, f"{again}\n{svc.show()}"
        assert again.states() == {"eth1": "in-sync"}
        assert SECONDARY in address_ips(t, "eth0")
        assert inbound_handshake(t, SECONDARY)
