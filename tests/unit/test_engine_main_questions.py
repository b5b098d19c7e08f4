"""What a pass asks the kernel about routes in `main` (subnet_routes): whether
someone else routes a destination the agent wants there, until the agent does."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from eni_agent.config import Config
from eni_agent.engine import reconcile
from eni_agent.netlink.messages import LookupRecord
from eni_agent.state import Observed, Route

from tests.harness.documents import example_metadata
from tests.harness.fake_netlink import FakeNetlink
from tests.harness.observed import ETH0, ETH1_DOWN, IP10

VSWITCH = IPv4Network("10.0.1.0/24")  # the example's secondary ENI, not in the primary's
OWN_ROUTE = Route(254, VSWITCH, 3, None, IP10)


class AskedKernel(FakeNetlink):
    """Records the questions without a source (the main-table ones); answers
    them with someone's route to `taken`, if given."""

    def __init__(self, observed: Observed, taken: IPv4Address | None = None):
        super().__init__(observed)
        self.taken = taken
        self.asked: list[IPv4Address] = []

    def route_lookups(self, questions: list) -> list:
        self.asked += [dst for src, dst in questions if src is None]
        return [LookupRecord(0, 1, 254, 2, None, 24, 3) if src is None and dst == self.taken
                else answer for (src, dst), answer in zip(questions,
                                                          super().route_lookups(questions))]


def test_a_destination_is_asked_about_until_the_agent_routes_it():
    nl = AskedKernel(Observed(links=(ETH0, ETH1_DOWN)))
    report = reconcile(nl, example_metadata(), Config())

    assert report.converged and OWN_ROUTE in nl.state.routes
    assert nl.asked == [IPv4Address("10.0.1.0")]  # before the changes, not when verifying


def test_once_converged_a_pass_asks_nothing_and_changes_nothing():
    nl = AskedKernel(Observed(links=(ETH0, ETH1_DOWN)))
    reconcile(nl, example_metadata(), Config())
    nl.asked.clear()
    nl.applied.clear()

    report = reconcile(nl, example_metadata(), Config())

    assert nl.asked == [] and nl.applied == []
    assert report.converged and [e.state for e in report.enis] == ["in-sync"]


def test_someone_elses_route_to_it_is_left_alone_and_said():
    nl = AskedKernel(Observed(links=(ETH0, ETH1_DOWN)), taken=IPv4Address("10.0.1.0"))
    report = reconcile(nl, example_metadata(), Config())

    assert not any(r.table == 254 for r in nl.state.routes)
    assert nl.asked.count(IPv4Address("10.0.1.0")) >= 2  # asked again when verifying
    assert any("main already has a route to 10.0.1.0/24" in w for w in report.warnings)
