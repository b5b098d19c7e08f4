"""The parser the agent's sockets use for route messages: what it drops
before pyroute2 decodes it (foreign routes of `main` with a prefix, and of
`local`), what it keeps, and what it decodes whole or only counts."""

from __future__ import annotations

import pytest
from pyroute2.netlink.rtnl import RTM_DELROUTE

from eni_agent.netlink.marshal import RouteFilter

from tests.harness.netlink_messages import route

MAIN, LOCAL = 254, 255


def parsed(marshal: RouteFilter, *messages) -> list:
    data = bytearray()
    for seq, msg in enumerate(messages, 1):
        msg["header"]["sequence_number"] = seq
        msg.encode()
        data += msg.data
    return list(marshal.parse(bytes(data)))


@pytest.mark.parametrize("message, kept", [
    (route("10.0.1.0/24", table=10003, protocol=234), True),
    (route("20.1.2.0/24", table=MAIN, protocol=186, gateway="10.0.0.253"), False),
    (route("20.1.2.0/24", table=MAIN, protocol=186, msg_type=RTM_DELROUTE), False),
    (route("0.0.0.0/0", table=MAIN, protocol=16, gateway="10.0.1.253"), True),
    (route("::/0", table=MAIN, protocol=9, gateway="fe80::1"), True),
    (route("10.0.1.10/32", table=LOCAL, protocol=2, rtype=2), False),
    (route("10.9.0.0/16", table=10004, protocol=3, rtype=6), True),
    (route("10.9.0.0/16", table=100, protocol=3), True),
    (route("10.5.0.0/16", table=MAIN, protocol=234), True),
], ids=["marked", "foreign in main", "foreign in main removed", "foreign default in main",
        "foreign IPv6 default in main", "local", "foreign in an agent-numbered table",
        "foreign in another table", "marked in main"])
def test_which_routes_are_decoded(message, kept):
    marshal = RouteFilter(234)
    assert len(parsed(marshal, message)) == (1 if kept else 0)


def test_a_kept_route_decodes_as_pyroute2_would():
    (msg,) = parsed(RouteFilter(234), route("0.0.0.0/0", table=MAIN, protocol=16,
                                            gateway="10.0.1.253", oif=3))
    assert (msg["proto"], msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_OIF")) == \
        (16, "10.0.1.253", 3)


def test_local_table_routes_are_noted_though_dropped():
    marshal = RouteFilter(234)
    parsed(marshal, route("10.0.1.10/32", table=LOCAL, protocol=2, rtype=2),
           route("10.0.1.11/32", table=LOCAL, protocol=2, rtype=2))
    assert marshal.local_changes == 2


def test_sequences_asked_whole_are_decoded_whole_and_counted_ones_only_counted():
    marshal = RouteFilter(234)
    marshal.whole.add(1)
    marshal.counted[2] = 0
    out = parsed(marshal, route("10.0.1.10/32", table=LOCAL, protocol=2, rtype=2),
                 route("10.0.1.11/32", table=LOCAL, protocol=2, rtype=2))
    assert [m.get_attr("RTA_DST") for m in out] == ["10.0.1.10"]
    assert marshal.counted == {2: 1}
