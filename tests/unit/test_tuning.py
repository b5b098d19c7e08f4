"""Config `mtu` and `queues`: validated, planned (MTU) and decided (queues), no host."""

from __future__ import annotations

import errno

import pytest

from eni_agent.desired import desired_state, wanted_mtu
from eni_agent.errors import InvalidInput
from eni_agent.netlink.channels import Channels
from eni_agent.plan import Action, Change, plan
from eni_agent.state import Observed
from eni_agent.tuning import QueueOutcome, queue_outcomes

from tests.harness.documents import example_doc, parse
from tests.harness.observed import CONFIG, ETH0, ETH1, config_with, converged_observed

METADATA = parse(example_doc())


@pytest.mark.parametrize("settings, mtu, queues", [
    ({}, None, None),
    ({"mtu": "primary"}, "primary", None),
    ({"mtu": 9000, "queues": "max"}, 9000, "max"),
    ({"mtu": 68}, 68, None),
])
def test_valid_settings(settings, mtu, queues):
    config = config_with(**settings)
    assert (config.mtu, config.queues) == (mtu, queues)


@pytest.mark.parametrize("settings", [
    {"mtu": "jumbo"}, {"mtu": 67}, {"mtu": 65536}, {"mtu": True}, {"mtu": "9000"},
    {"queues": "min"}, {"queues": 4},
])
def test_invalid_settings(settings):
    with pytest.raises(InvalidInput):
        config_with(**settings)


PRIMARY_JUMBO = ETH0._replace(mtu=8500)
ETH1_1500 = ETH1._replace(mtu=1500)


@pytest.mark.parametrize("links, mtu, wanted", [
    ((PRIMARY_JUMBO, ETH1_1500), "primary", 8500),
    ((ETH1_1500,), "primary", None),                     # no primary link: nothing to follow
    ((PRIMARY_JUMBO, ETH1_1500), 9000, 9000),
    ((PRIMARY_JUMBO, ETH1_1500), None, None),
])
def test_wanted_mtu(links, mtu, wanted):
    assert wanted_mtu(METADATA, Observed(links=links), config_with(mtu=mtu)) == wanted


def observed_with(*links):
    return converged_observed()._replace(links=links)


@pytest.mark.parametrize("links, mtu, expected", [
    ((PRIMARY_JUMBO, ETH1_1500), "primary",
     [Change(Action.SET_MTU, ETH1_1500._replace(mtu=8500))]),
    ((PRIMARY_JUMBO, ETH1._replace(mtu=8500)), "primary", []),   # only when it differs
    ((ETH0._replace(mtu=1500), ETH1_1500), 9000,                  # never the primary
     [Change(Action.SET_MTU, ETH1_1500._replace(mtu=9000))]),
    ((PRIMARY_JUMBO, ETH1_1500), None, []),                       # off by default
])
def test_mtu_plan(links, mtu, expected):
    config = config_with(mtu=mtu)
    observed = observed_with(*links)
    changes = plan(desired_state(METADATA, observed, config), observed)
    assert [c for c in changes if c.action is Action.SET_MTU] == expected


def test_mtu_is_set_before_the_link_goes_up():
    down = ETH1_1500._replace(up=False)
    observed = Observed(links=(PRIMARY_JUMBO, down))
    actions = [c.action for c in plan(desired_state(METADATA, observed,
                                                    config_with(mtu="primary")), observed)]
    assert actions.index(Action.SET_MTU) < actions.index(Action.LINK_UP)


def test_set_mtu_reads_as_a_sentence():
    assert Change(Action.SET_MTU, ETH1._replace(mtu=9000)).describe({}) == "set mtu 9000 on eth1"


def channels(rx: int, most: int = 4) -> Channels:
    return Channels(0, 0, rx, most, rx, most)


VIRTIO_ONE_OF_FOUR = Channels(1, 4, 0, 0, 0, 0)


def outcomes(read, apply=True, config=config_with(queues="max")):
    raised = []

    def raise_to_max(name):
        raised.append(name)
        return Channels(4, 4, 0, 0, 0, 0)
    observed = observed_with(ETH0, ETH1)
    found = queue_outcomes(desired_state(METADATA, observed, config), config, apply,
                           read=read, raise_to_max=raise_to_max)
    return found, raised


def test_queues_raised_when_below_the_maximum():
    found, raised = outcomes(lambda name: VIRTIO_ONE_OF_FOUR)
    assert raised == ["eth1"]
    assert found[ETH1.mac] == QueueOutcome("4 of 4 combined", "set queues of eth1 to 4 of 4 combined")


def test_queues_status_only_says_what_is_needed():
    found, raised = outcomes(lambda name: VIRTIO_ONE_OF_FOUR, apply=False)
    assert raised == [] and found[ETH1.mac].change == "raise the queues of eth1 to their maximum"
    assert found[ETH1.mac].shown == "1 of 4 combined"


@pytest.mark.parametrize("read, shown", [
    (lambda name: channels(4), "rx 4 of 4, tx 4 of 4"),
    (lambda name: None, "not settable (the driver reports none)"),
])
def test_queues_left_alone_at_the_maximum_or_without_channels(read, shown):
    found, raised = outcomes(read)
    assert raised == [] and found[ETH1.mac] == QueueOutcome(shown)


def test_a_queue_failure_is_an_error_of_that_eni():
    def read(name):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    found, _ = outcomes(read)
    assert found[ETH1.mac].error == "queues of eth1: Operation not supported"


def test_queues_off_by_default_reads_nothing():
    def read(name):
        raise AssertionError("read a NIC with queues unset")
    assert outcomes(read, config=CONFIG)[0] == {}
