"""A stacked link (macvlan, VLAN, ipvlan, macvtap) is told by its kind and
the link beneath it; a veth's IFLA_LINK (its peer) makes it no child."""

from __future__ import annotations

import pytest

from eni_agent.netlink.messages import link_record

from tests.harness.netlink_messages import decoded, link


def with_kind(msg, kind, lower):
    if lower is not None:
        msg["attrs"].append(("IFLA_LINK", lower))
    if kind is not None:
        msg["attrs"].append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]}))
    return msg


@pytest.mark.parametrize("kind, lower, parent", [
    ("macvlan", 3, 3),
    ("macvtap", 3, 3),
    ("vlan", 3, 3),
    ("ipvlan", 3, 3),
    ("veth", 12, None),  # IFLA_LINK: the peer, in another namespace
    (None, None, None),  # a NIC with a device behind it
    ("macvlan", None, None),  # its parent in another namespace: nothing to rival here
])
def test_the_parent_of_a_stacked_link(kind, lower, parent):
    (msg,) = decoded(with_kind(link(7, "mv0"), kind, lower))
    assert link_record(msg).parent == parent
