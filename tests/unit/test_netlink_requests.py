"""The requests the agent builds for each change, decoded back by pyroute2:
the kernel's view of what eni-agent asks for (pyroute2's tests/test_unit style)."""

from __future__ import annotations

import socket
from ipaddress import ip_address, ip_network

import pytest
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.rtnl import (RTM_DELADDR, RTM_DELROUTE, RTM_DELRULE, RTM_NEWADDR,
                                   RTM_NEWLINK, RTM_NEWROUTE, RTM_NEWRULE, RTM_SETLINK)
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from eni_agent.netlink.messages import barrier, promote_secondaries_msg, request
from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Route, Rule

PROTO = 234
ETH1 = Link(3, "eth1", "00:16:3e:00:01:01", False, promote_secondaries=False)
NEW = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL


def sent(change: Change, marks_addresses: bool = True):
    """The request as the kernel would read it."""
    msg = request(change, PROTO, marks_addresses)
    msg["header"]["sequence_number"] = 7
    msg.encode()
    (decoded,) = MarshalRtnl().parse(bytes(msg.data))
    return decoded


def attrs(msg) -> dict:
    return {slot[0]: slot[1] for slot in msg["attrs"]}


A4 = Address(3, ip_address("10.0.1.10"), 24)
A6 = Address(3, ip_address("2001:db8:1::10"), 64)


@pytest.mark.parametrize("change, msg_type, flags, fields, expected_attrs", [
    (Change(Action.ADD, A4), RTM_NEWADDR, NEW,
     {"family": socket.AF_INET, "prefixlen": 24, "index": 3, "scope": 0},
     {"IFA_LOCAL": "10.0.1.10", "IFA_ADDRESS": "10.0.1.10", "IFA_FLAGS": 0x200,
      "IFA_PROTO": PROTO}),
    (Change(Action.ADD, A6), RTM_NEWADDR, NEW,
     {"family": socket.AF_INET6, "prefixlen": 64, "index": 3},
     {"IFA_LOCAL": "2001:db8:1::10", "IFA_FLAGS": 0x200 | 0x2, "IFA_PROTO": PROTO}),
    (Change(Action.REMOVE, A4), RTM_DELADDR, NLM_F_REQUEST,
     {"family": socket.AF_INET, "prefixlen": 24, "index": 3},
     {"IFA_LOCAL": "10.0.1.10", "IFA_ADDRESS": "10.0.1.10"}),
], ids=["add v4: noprefixroute, marked", "add v6: nodad too", "remove"])
def test_address_requests(change, msg_type, flags, fields, expected_attrs):
    msg = sent(change)
    assert msg["header"]["type"] == msg_type
    assert msg["header"]["flags"] == flags
    assert {name: msg[name] for name in fields} == fields
    assert expected_attrs.items() <= attrs(msg).items()
    if change.action is Action.REMOVE:
        assert "IFA_PROTO" not in attrs(msg) and "IFA_FLAGS" not in attrs(msg)


def test_an_address_is_not_marked_where_the_kernel_drops_marks():
    assert "IFA_PROTO" not in attrs(sent(Change(Action.ADD, A4), marks_addresses=False))


SUBNET = Route(10003, ip_network("10.0.1.0/24"), 3)
DEFAULT = Route(10003, ip_network("0.0.0.0/0"), 3, ip_address("10.0.1.253"))
DEFAULT6 = Route(10003, ip_network("::/0"), 3, ip_address("fe80::1"))
LOW_TABLE = Route(100, ip_network("10.0.1.0/24"), 3)
MAIN_SUBNET = Route(254, ip_network("10.0.1.0/24"), 3, None, ip_address("10.0.1.10"))
MAIN_VIA = Route(254, ip_network("10.9.0.0/16"), 3, ip_address("10.0.1.253"),
                 ip_address("10.0.1.10"))


@pytest.mark.parametrize("change, msg_type, flags, fields, expected_attrs, absent", [
    (Change(Action.ADD, SUBNET), RTM_NEWROUTE, NEW,
     {"family": socket.AF_INET, "dst_len": 24, "table": 252, "proto": PROTO, "scope": 253,
      "type": 1, "flags": 0},
     {"RTA_TABLE": 10003, "RTA_DST": "10.0.1.0", "RTA_OIF": 3}, ["RTA_GATEWAY"]),
    (Change(Action.ADD, DEFAULT), RTM_NEWROUTE, NEW,
     {"dst_len": 0, "proto": PROTO, "scope": 0, "type": 1, "flags": 4},  # onlink
     {"RTA_TABLE": 10003, "RTA_GATEWAY": "10.0.1.253", "RTA_OIF": 3}, ["RTA_DST"]),
    (Change(Action.REPLACE, DEFAULT), RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE,
     {"proto": PROTO, "flags": 4}, {"RTA_GATEWAY": "10.0.1.253"}, []),
    (Change(Action.ADD, DEFAULT6), RTM_NEWROUTE, NEW,
     {"family": socket.AF_INET6, "dst_len": 0, "scope": 0, "flags": 4},
     {"RTA_GATEWAY": "fe80::1", "RTA_OIF": 3}, []),
    (Change(Action.REMOVE, SUBNET), RTM_DELROUTE, NLM_F_REQUEST,
     {"scope": 255, "proto": PROTO, "type": 0},  # RT_SCOPE_NOWHERE matches any scope
     {"RTA_TABLE": 10003, "RTA_DST": "10.0.1.0", "RTA_OIF": 3}, []),
    (Change(Action.ADD, LOW_TABLE), RTM_NEWROUTE, NEW, {"table": 100}, {"RTA_TABLE": 100}, []),
    (Change(Action.ADD, MAIN_SUBNET), RTM_NEWROUTE, NEW, {"table": 254, "scope": 253},
     {"RTA_TABLE": 254, "RTA_DST": "10.0.1.0", "RTA_PREFSRC": "10.0.1.10", "RTA_OIF": 3}, []),
    (Change(Action.ADD, MAIN_VIA), RTM_NEWROUTE, NEW, {"table": 254, "scope": 0, "flags": 4},
     {"RTA_DST": "10.9.0.0", "RTA_GATEWAY": "10.0.1.253", "RTA_PREFSRC": "10.0.1.10"}, []),
], ids=["subnet on-link", "default via gateway", "replace", "IPv6 default", "remove",
        "table < 256", "main: vswitch, src", "main: via the gateway, src"])
def test_route_requests(change, msg_type, flags, fields, expected_attrs, absent):
    msg = sent(change)
    assert msg["header"]["type"] == msg_type
    assert msg["header"]["flags"] == flags
    assert {name: msg[name] for name in fields} == fields
    assert expected_attrs.items() <= attrs(msg).items()
    assert not set(absent) & attrs(msg).keys()


@pytest.mark.parametrize("change, msg_type, flags", [
    (Change(Action.ADD, Rule(10000, ip_address("10.0.1.10"), 10003)), RTM_NEWRULE, NEW),
    (Change(Action.REMOVE, Rule(10000, ip_address("10.0.1.10"), 10003)), RTM_DELRULE,
     NLM_F_REQUEST),
    (Change(Action.ADD, Rule(10000, ip_address("2001:db8:1::10"), 10003)), RTM_NEWRULE, NEW),
    (Change(Action.ADD, Rule(10000, ip_network("10.0.1.32/28"), 10003)), RTM_NEWRULE, NEW),
    (Change(Action.ADD, Rule(10000, ip_network("2001:db8:1:0:1::/80"), 10003)), RTM_NEWRULE,
     NEW),
], ids=["add", "remove", "IPv6", "prefix", "IPv6 prefix"])
def test_rule_requests(change, msg_type, flags):
    msg = sent(change)
    rule = change.target
    assert msg["header"]["type"] == msg_type
    assert msg["header"]["flags"] == flags
    assert msg["family"] == (socket.AF_INET if rule.version == 4 else socket.AF_INET6)
    assert msg["src_len"] == rule.src.prefixlen  # 32 or 128 for a host rule
    assert msg["action"] == 1  # FR_ACT_TO_TBL
    assert msg["table"] == 0  # the real table (> 255) is in FRA_TABLE
    assert attrs(msg) == {"FRA_SRC": str(rule.src.network_address), "FRA_PRIORITY": 10000,
                          "FRA_TABLE": 10003, "FRA_PROTOCOL": PROTO}


@pytest.mark.parametrize("change, msg_type, flags", [
    (Change(Action.ADD, Rule(9999, ip_network("0.0.0.0/0"), 254, 0)), RTM_NEWRULE, NEW),
    (Change(Action.REMOVE, Rule(9999, ip_network("0.0.0.0/0"), 254, 0)), RTM_DELRULE,
     NLM_F_REQUEST),
    (Change(Action.ADD, Rule(9999, ip_network("::/0"), 254, 0)), RTM_NEWRULE, NEW),
], ids=["add", "remove", "IPv6"])
def test_main_table_first_rule_request(change, msg_type, flags):
    """`from all lookup main suppress_prefixlength 0`: no source at all (the
    kernel's "from all"), the suppressor set, marked like every agent rule."""
    msg = sent(change)
    assert msg["header"]["type"] == msg_type
    assert msg["header"]["flags"] == flags
    assert msg["family"] == (socket.AF_INET if change.target.version == 4 else socket.AF_INET6)
    assert (msg["src_len"], msg["dst_len"], msg["table"], msg["action"]) == (0, 0, 254, 1)
    assert attrs(msg) == {"FRA_PRIORITY": 9999, "FRA_TABLE": 254, "FRA_PROTOCOL": PROTO,
                          "FRA_SUPPRESS_PREFIXLEN": 0}


def test_main_table_first_rule_reads_back_as_the_agents():
    """What the agent sends is what it then recognises as its own."""
    from eni_agent.netlink.messages import rule_record
    from eni_agent.ownership import owns_rule

    wanted = Rule(9999, ip_network("0.0.0.0/0"), 254, 0)
    record = rule_record(sent(Change(Action.ADD, wanted)))
    assert owns_rule(record, PROTO) and not owns_rule(record, PROTO + 1)
    assert (record.src, record.src_len, record.suppress_prefixlen, record.selectors) == (
        None, 0, 0, False)


def test_link_up():
    msg = sent(Change(Action.LINK_UP, ETH1))
    assert msg["header"]["type"] == RTM_NEWLINK
    assert msg["header"]["flags"] == NLM_F_REQUEST  # no create: it only changes the link
    assert (msg["index"], msg["flags"], msg["change"]) == (3, 1, 1)


def test_set_mtu_changes_only_the_mtu():
    msg = sent(Change(Action.SET_MTU, ETH1._replace(mtu=8500)))
    assert msg["header"]["type"] == RTM_NEWLINK and msg["header"]["flags"] == NLM_F_REQUEST
    assert (msg["index"], msg["flags"], msg["change"]) == (3, 0, 0)  # up/down untouched
    assert msg.get_attr("IFLA_MTU") == 8500


def test_promote_secondaries_nests_one_setting():
    msg = request(Change(Action.KEEP_SECONDARIES, ETH1), PROTO)
    msg.encode()
    back = promote_secondaries_msg(bytes(msg.data))
    back.decode()
    assert back["header"]["type"] == RTM_SETLINK
    assert back["index"] == 3
    inet = back.get_attr("IFLA_AF_SPEC").get_attr("AF_INET")
    conf = inet.get_attr("IFLA_INET_CONF")
    assert [tuple(slot) for slot in conf["attrs"]] == [("IPV4_DEVCONF_PROMOTE_SECONDARIES", 1)]
    # IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { 20: u32 1 } } }, as inet_set_link_af reads it
    assert bytes(msg.data)[32:] == bytes.fromhex("14001a00" "10000200" "0c000100" "08001400"
                                                 "01000000")


def test_promote_secondaries_encodes_the_same_after_links_were_decoded():
    """pyroute2 compiles a class's attribute map once, on first use; the
    request must not pick up `ifinfmsg`'s (a bug found here: the request went
    out with the dump's flat IFLA_INET_CONF array and changed nothing)."""
    from tests.harness.netlink_messages import decoded, link

    before = request(Change(Action.KEEP_SECONDARIES, ETH1), PROTO)
    before.encode()
    decoded(link())  # decoding a link compiles ifinfmsg's map
    after = request(Change(Action.KEEP_SECONDARIES, ETH1), PROTO)
    after.encode()
    assert bytes(after.data) == bytes(before.data)


def test_the_barrier_only_asks_for_an_ack():
    msg = barrier()
    msg["header"]["sequence_number"] = 9
    msg.encode()
    assert bytes(msg.data) == (16).to_bytes(4, "little") + bytes([1, 0]) + (
        NLM_F_REQUEST | NLM_F_ACK).to_bytes(2, "little") + (9).to_bytes(4, "little") + bytes(4)
