"""ENI ids as interface altnames: which names, when added, and that only the
ids the metadata gave for a NIC are ever removed (an altname has no mark)."""

from __future__ import annotations

from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_DELLINKPROP, RTM_NEWLINKPROP
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
import pytest

from eni_agent.altnames import altname_of
from eni_agent.desired import desired_state
from eni_agent.netlink.messages import link_record, request
from eni_agent.plan import Action, Change, plan
from eni_agent.state import AltName, Observed

from tests.harness.documents import SECOND_MAC, example_doc, parse, second_eni
from tests.harness.observed import CONFIG, ETH0, ETH1, ETH1_ALTNAME, config_with, converged_observed
from tests.harness.netlink_messages import decoded, link


@pytest.mark.parametrize("eni_id, altname", [
    ("eni-bp1second", "eni-bp1second"),
    ("eni-2zeb0kbbnlxa8kebjcz6", "eni-2zeb0kbbnlxa8kebjcz6"),
    ("eni-" + "a" * 123, "eni-" + "a" * 123),  # 127 characters and the NUL: ALTIFNAMSIZ
    ("eni-" + "a" * 124, None),  # one too many for the kernel
    ("eni-a/b", None),  # '/' and ':' are refused in any interface name
    ("eni-a:b", None),
    ("bp1second", None),  # not an ENI id: the agent would not know it as its own later
    (None, None),
])
def test_the_altname_an_eni_id_makes(eni_id, altname):
    assert altname_of(eni_id) == altname


def planned(doc, observed, config=CONFIG):
    desired = desired_state(parse(doc) if doc is not None else None, observed, config)
    return [(c.action, c.target) for c in plan(desired, observed) if isinstance(c.target, AltName)]


def test_a_configured_eni_gets_its_id_as_altname_once():
    assert planned(example_doc(), Observed(links=(ETH0, ETH1))) == [(Action.ADD, ETH1_ALTNAME)]
    assert planned(example_doc(), converged_observed()) == []


def test_altnames_someone_else_gave_stay():
    theirs = {AltName(3, "eni-bp1other"), AltName(3, "uplink"), AltName(2, "eni-bp1primary")}
    observed = converged_observed(altnames=frozenset(theirs | {ETH1_ALTNAME}))
    assert planned(example_doc(), observed) == []
    # cleanup takes only ENI-id names of links carrying the agent's marked state
    assert planned(None, observed) == [(Action.REMOVE, AltName(3, "eni-bp1other")),
                                       (Action.REMOVE, ETH1_ALTNAME)]


def test_a_changed_id_replaces_the_old_altname_only_if_the_metadata_gave_it():
    doc = example_doc()
    second_eni(doc)["network-interface-id"] = "eni-bp1renamed"
    assert planned(doc, converged_observed()) == [(Action.ADD, AltName(3, "eni-bp1renamed"))]


def test_an_ignored_eni_loses_its_altname():
    config = config_with(ignore_macs=[SECOND_MAC])
    assert planned(example_doc(), converged_observed(), config) == [(Action.REMOVE, ETH1_ALTNAME)]


def test_an_eni_left_to_another_tool_keeps_it():
    config = config_with(manage_only=["eni-bp1other"])
    assert planned(example_doc(), converged_observed(), config) == []


def test_a_name_another_link_holds_is_not_asked_for():
    eth9 = ETH1._replace(index=9, name="eth9", mac="00:16:3e:00:09:09")
    observed = Observed(links=(ETH0, ETH1, eth9), altnames=frozenset({AltName(9, "eni-bp1second")}))
    assert planned(example_doc(), observed) == []


def test_an_id_that_cannot_be_a_name_gets_none():
    doc = example_doc()
    second_eni(doc)["network-interface-id"] = "eni-" + "x" * 124
    assert planned(doc, Observed(links=(ETH0, ETH1))) == []


@pytest.mark.parametrize("action, msg_type, flags", [
    (Action.ADD, RTM_NEWLINKPROP, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL),
    (Action.REMOVE, RTM_DELLINKPROP, NLM_F_REQUEST),
])
def test_the_request_is_a_link_property(action, msg_type, flags):
    msg = request(Change(action, ETH1_ALTNAME), 234)
    msg["header"]["sequence_number"] = 1
    msg.encode()
    (sent,) = MarshalRtnl().parse(bytes(msg.data))
    assert (sent["header"]["type"], sent["header"]["flags"], sent["index"]) == (msg_type, flags, 3)
    assert list(sent.get_attr("IFLA_PROP_LIST").altnames()) == ["eni-bp1second"]


def test_a_link_dump_reads_its_altnames():
    msg = link()
    msg["attrs"].append(("IFLA_PROP_LIST", {"attrs": [("IFLA_ALT_IFNAME", "eni-bp1second"),
                                                      ("IFLA_ALT_IFNAME", "uplink")]}))
    (read,) = decoded(msg)
    assert link_record(read).altnames == ("eni-bp1second", "uplink")
    (plain,) = decoded(link())
    assert link_record(plain).altnames == ()


def test_a_kernel_without_altnames_is_asked_for_none():
    observed = Observed(links=(ETH0, ETH1), altnames_supported=False)
    assert planned(example_doc(), observed) == []
