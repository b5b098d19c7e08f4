"""Which new NICs start a failover burst of metadata fetches: a link with a
device behind it (no netlink link kind), with Alibaba's 00:16:3e prefix on
ECS (a globally administered MAC elsewhere), not ignored by the config."""

from __future__ import annotations

import pytest

from eni_agent.netlink.events import notification
from eni_agent.relevance import may_be_an_eni

from tests.harness.observed import config_with
from tests.harness.netlink_messages import decoded, link


def event(mac="00:16:3e:00:09:01", kind=None, name="eth7"):
    return notification(decoded(link(7, name, mac, kind=kind))[0]).event


@pytest.mark.parametrize("mac, kind, on_ecs, candidate", [
    ("00:16:3e:00:09:01", None, True, True),  # a virtio/PCI NIC with an ECS MAC
    ("00:16:3e:00:09:01", "veth", True, False),
    ("00:16:3e:00:09:01", "macvlan", True, False),
    ("00:16:3e:00:09:01", "bridge", True, False),
    ("00:16:3e:00:09:01", "tun", True, False),
    ("00:50:56:12:34:56", None, True, False),  # a NIC, but not Alibaba's
    ("00:50:56:12:34:56", None, False, True),  # ... which elsewhere may be one
    ("0a:58:0a:f4:00:01", None, False, False),  # locally administered
])
def test_a_burst_is_for_nics_with_a_device_and_the_clouds_mac(mac, kind, on_ecs, candidate):
    assert may_be_an_eni(event(mac, kind), config_with(), on_ecs) is candidate


def test_test_topologies_let_veths_burst():
    assert may_be_an_eni(event(kind="veth"), config_with(), True, virtual_links_too=True)


def test_ignored_nics_start_no_burst():
    assert not may_be_an_eni(event(), config_with(ignore_macs=["00:16:3e:00:09:01"]), True)
    assert not may_be_an_eni(event(name="cali0"), config_with(ignore_interfaces=["cali*"]),
                             True)
