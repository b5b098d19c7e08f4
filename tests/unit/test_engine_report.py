"""reconcile() and preview() (status, dry run) against a fake netlink adapter holding sets
in memory."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from eni_agent.engine import preview, reconcile
from eni_agent.errors import ExitCode
from eni_agent.netlink.outcomes import Outcome, Result  # pure values: no kernel, no pyroute2
from eni_agent.plan import Action
from eni_agent.state import Address, Link, Observed, Rule

from tests.harness.documents import (SECOND_MAC, THIRD_MAC, eni_fields, example_doc,
                                     example_metadata, macs_of, make_doc, parse)
from tests.harness.fake_netlink import FakeNetlink, fail_rule_adds
from tests.harness.observed import (CONFIG, ETH0, ETH1, ETH1_ALTNAME, ETH1_DOWN, IP10, IP11,
                                    eth1_state)


def fresh(links=(ETH0, ETH1_DOWN), **kwargs) -> FakeNetlink:
    return FakeNetlink(Observed(links=links), **kwargs)


def configured_state():
    return dict(zip(("addresses", "routes", "rules"), eth1_state()),
                altnames=frozenset({ETH1_ALTNAME}))


def test_converges_in_one_round():
    nl = fresh()
    report = reconcile(nl, example_metadata(), CONFIG)

    assert len(nl.applied) == 1
    assert report.converged and report.exit_code == ExitCode.OK
    (eni,) = report.enis
    assert (eni.mac, eni.state, eni.link, eni.table) == (SECOND_MAC, "configured", "eth1", 10003)
    assert eni.eni_id == "eni-bp1second" and eni.errors == []
    assert eni.changes[0] == "set promote_secondaries on eth1"
    assert "add rule 10000: from 10.0.1.11 lookup 10003" in eni.changes
    assert len(eni.changes) == 9
    addresses, routes, rules = eth1_state()
    assert (nl.state.addresses, nl.state.routes, nl.state.rules) == (addresses, routes, rules)
    assert all(link.up for link in nl.state.links)


def test_second_run_changes_nothing_and_is_in_sync():
    nl = fresh()
    reconcile(nl, example_metadata(), CONFIG)
    nl.applied.clear()

    report = reconcile(nl, example_metadata(), CONFIG)

    assert nl.applied == []
    assert report.converged and report.exit_code == 0
    assert [(e.state, e.changes, e.errors) for e in report.enis] == [("in-sync", [], [])]
    assert report.other_changes == [] and report.errors == []


def test_dry_run_applies_nothing():
    nl = fresh()
    before = nl.state
    report = preview(nl, example_metadata(), CONFIG, command="sync")

    assert nl.applied == [] and nl.state == before
    assert report.dry_run and report.as_dict()["dry_run"] is True
    (eni,) = report.enis
    assert eni.state == "would-change"
    assert len(eni.changes) == 9 and eni.errors == []


def test_dry_run_when_in_sync():
    nl = FakeNetlink(Observed(links=(ETH0, ETH1), **configured_state()))
    report = preview(nl, example_metadata(), CONFIG, command="sync")
    assert [e.state for e in report.enis] == ["in-sync"] and report.exit_code == 0


def test_failed_change_is_not_converged_with_the_error_on_its_eni():
    nl = fresh(fail=fail_rule_adds)
    report = reconcile(nl, example_metadata(), CONFIG)

    assert not report.converged
    assert report.exit_code == ExitCode.NOT_CONVERGED == 3
    assert report.as_dict()["result"] == "not-converged"
    (eni,) = report.enis
    assert eni.state == "failed"
    assert eni.errors == ["add rule 10000: from 10.0.1.11 lookup 10003: "
                          "Operation not permitted (EPERM)"]
    assert any("FAILED Operation not permitted" in c for c in eni.changes)
    assert len(nl.applied) >= 2  # retried before giving up
    # Everything else went in.
    assert Rule(10000, IP10, 10003) in nl.state.rules


def test_change_that_does_not_take_effect_is_reported():
    class Forgetful(FakeNetlink):
        """Says DONE for the address but never holds it."""

        def _apply(self, change):
            if not (isinstance(change.target, Address) and change.target.ip == IP10):
                super()._apply(change)

    nl = Forgetful(Observed(links=(ETH0, ETH1)))
    report = reconcile(nl, example_metadata(), CONFIG)

    assert report.exit_code == 3
    (eni,) = report.enis
    assert eni.state == "failed"
    assert eni.errors == ["add address 10.0.1.10/24 dev eth1: did not take effect"]


def test_add_refused_as_already_present_is_explained():
    """EEXIST for an object the agent does not own (someone else's, unmarked)."""
    def already(change):
        return Outcome.ALREADY if isinstance(change.target, Rule) else None

    nl = FakeNetlink(Observed(links=(ETH0, ETH1)), outcome=already)
    report = reconcile(nl, example_metadata(), CONFIG)

    assert report.exit_code == 3
    (eni,) = report.enis
    assert eni.errors == [f"add rule 10000: from {ip} lookup 10003: already present but not owned "
                          "by eni-agent" for ip in (IP10, IP11)]


def test_link_unplugged_during_sync_leaves_the_eni_pending():
    class Unplugged(FakeNetlink):
        """The NIC is hot-unplugged as the first change reaches it."""

        def apply(self, changes):
            self.applied.append(list(changes))
            links = tuple(link for link in self.state.links if link.index != ETH1.index)
            self.state = self.state._replace(links=links)
            return [Result(c, Outcome.LINK_GONE) for c in changes]

    nl = Unplugged(Observed(links=(ETH0, ETH1)))
    report = reconcile(nl, example_metadata(), CONFIG)

    assert len(nl.applied) == 1
    assert report.converged and report.exit_code == 0
    (eni,) = report.enis
    assert (eni.state, eni.changes, eni.errors) == ("pending", [], [])


def test_report_as_dict_is_json():
    report = reconcile(fresh(fail=fail_rule_adds), example_metadata(), CONFIG)
    doc = json.loads(json.dumps(report.as_dict()))
    assert doc["exit_code"] == 3 and doc["result"] == "not-converged"
    assert doc["enis"][0]["mac"] == SECOND_MAC and doc["enis"][0]["errors"]


def test_pending_eni_exits_zero():
    nl = fresh(links=(ETH0,))
    report = reconcile(nl, example_metadata(), CONFIG)

    assert nl.applied == []
    assert report.converged and report.exit_code == 0
    (eni,) = report.enis
    assert eni.state == "pending" and eni.reason and eni.errors == []


@pytest.mark.parametrize(
    "links, observed_extra, state",
    [
        ((ETH0, ETH1, Link(9, "eth9", SECOND_MAC, True)), {}, "ambiguous"),
        ((ETH0, ETH1), {"foreign_tables": frozenset({10003})}, "conflict"),
    ],
)
def test_ambiguous_or_conflicting_eni_fails_without_changes(links, observed_extra, state):
    nl = FakeNetlink(Observed(links=links, **observed_extra))
    report = reconcile(nl, example_metadata(), CONFIG)

    assert nl.applied == []
    assert report.exit_code == 3
    (eni,) = report.enis
    assert eni.state == state and eni.errors == [eni.reason]


def test_one_failing_eni_does_not_stop_another():
    doc = make_doc({
        SECOND_MAC: eni_fields(["10.0.1.10", "10.0.1.11"], "10.0.1.0/24", "10.0.1.253"),
        THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253"),
    })
    eth2 = Link(4, "eth2", THIRD_MAC, True)
    nl = FakeNetlink(Observed(links=(ETH0, ETH1, eth2)), fail=fail_rule_adds)
    report = reconcile(nl, parse(doc), CONFIG)

    assert report.exit_code == 3
    states = [(e.mac, e.state) for e in report.enis]
    assert states == [(SECOND_MAC, "failed"), (THIRD_MAC, "configured")]


def test_state_of_a_departed_eni_is_removed_and_reported_apart():
    nl = FakeNetlink(Observed(links=(ETH0, ETH1), **configured_state()))
    doc = example_doc()
    del macs_of(doc)[SECOND_MAC]
    report = reconcile(nl, parse(doc), CONFIG)

    assert report.converged and report.enis == []
    assert len(report.other_changes) == 6
    assert all(c.startswith("remove ") for c in report.other_changes)
    assert not (nl.state.addresses or nl.state.routes or nl.state.rules)


def test_cleanup_removes_owned_state_only():
    foreign = frozenset({Address(3, IP10, 24), Address(2, IP11, 16)})
    nl = FakeNetlink(Observed(links=(ETH0, ETH1), foreign_addresses=foreign,
                              foreign_tables=frozenset({254}), **configured_state()))
    report = reconcile(nl, None, CONFIG, command="cleanup")

    assert report.converged and report.command == "cleanup"
    assert not (nl.state.addresses or nl.state.routes or nl.state.rules)
    removed = [c for batch in nl.applied for c in batch]
    assert {c.action for c in removed} == {Action.REMOVE}
    owned = set().union(*eth1_state()) | {ETH1_ALTNAME}
    assert {c.target for c in removed} == owned  # all of it, and not the foreign addresses


def test_status_out_of_sync_exits_ten_and_changes_nothing():
    nl = fresh()
    before = nl.state
    report = preview(nl, example_metadata(), CONFIG)

    assert nl.applied == [] and nl.state == before
    assert report.command == "status"
    assert not report.converged and report.exit_code == 3
    (eni,) = report.enis
    assert eni.state == "out-of-sync" and len(eni.changes) == 9 and eni.errors == []


def test_status_after_sync_is_in_sync():
    nl = fresh()
    reconcile(nl, example_metadata(), CONFIG)
    report = preview(nl, example_metadata(), CONFIG)
    assert report.converged and report.exit_code == 0
    assert [e.state for e in report.enis] == ["in-sync"]


def test_status_with_stale_state_of_a_departed_eni_is_out_of_sync():
    nl = FakeNetlink(Observed(links=(ETH0, ETH1), **configured_state()))
    doc = example_doc()
    del macs_of(doc)[SECOND_MAC]
    report = preview(nl, parse(doc), CONFIG)
    assert report.exit_code == 3 and len(report.other_changes) == 6


def test_status_warns_about_other_tools_on_the_nic():
    nl = FakeNetlink(Observed(links=(ETH0, ETH1), foreign_addresses=frozenset({
        Address(3, IP10, 24), Address(3, IPv4Address("10.0.1.99"), 24)}),
        foreign_default_oifs=frozenset({3}), **configured_state()))
    report = preview(nl, example_metadata(), CONFIG)
    (eni,) = report.enis
    assert len(eni.warnings) == 2
    assert any("10.0.1.10/24" in w and "listed in the metadata" in w for w in eni.warnings)
    assert any("default route via eth1" in w for w in eni.warnings)
    # an address inside the vswitch that is not the ENI's own is followed, not warned about
    assert eni.followed == ["10.0.1.99/24"]


def test_change_failing_every_round_is_listed_once():
    nl = fresh(fail=fail_rule_adds)
    (eni,) = reconcile(nl, example_metadata(), CONFIG).enis
    assert len(eni.changes) == len(set(eni.changes)), eni.changes
