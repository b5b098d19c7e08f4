"""Prefixes delegated to an ENI (`ipv4-prefixes`, `ipv6-prefixes`): inside the
ENI's vswitch CIDR of their family, carried on the Eni (issue 12 §6)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network

import pytest

from eni_agent.errors import InvalidInput
from eni_agent.model import parse_metadata

from tests.harness.documents import SECOND_MAC, THIRD_MAC, eni_fields, make_doc, parse

V6 = {"ipv6s": ["2001:db8:1::10"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
      "ipv6-gateway": "fe80::1"}


def second(**fields):
    return eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253", **fields)


def refusal(doc) -> str:
    (refused,) = parse(doc).invalid
    assert refused.mac == SECOND_MAC
    return refused.message


def test_prefixes_are_carried_deduplicated_in_order():
    fields = second(**V6, **{"ipv4-prefixes": ["10.0.1.32/28", "10.0.1.16/28", "10.0.1.32/28"],
                             "ipv6-prefixes": ["2001:db8:1:0:1::/80"]})
    (eni,) = parse(make_doc({SECOND_MAC: fields})).secondary_enis
    assert eni.ipv4_prefixes == (IPv4Network("10.0.1.32/28"), IPv4Network("10.0.1.16/28"))
    assert eni.ipv6_prefixes == (IPv6Network("2001:db8:1:0:1::/80"),)


def test_no_prefixes_by_default():
    (eni,) = parse(make_doc({SECOND_MAC: second()})).secondary_enis
    assert (eni.ipv4_prefixes, eni.ipv6_prefixes) == ((), ())


def test_ipv6_prefixes_without_ipv6_addresses_make_the_eni_ipv6():
    fields = second(**{**V6, "ipv6s": [], "ipv6-prefixes": ["2001:db8:1:0:1::/80"]})
    (eni,) = parse(make_doc({SECOND_MAC: fields})).secondary_enis
    assert eni.ipv6s == ()
    assert eni.ipv6_cidr == IPv6Network("2001:db8:1::/64")
    assert eni.ipv6_prefixes == (IPv6Network("2001:db8:1:0:1::/80"),)


@pytest.mark.parametrize(
    "fields, needles",
    [
        ({"ipv4-prefixes": ["10.0.2.16/28"]},
         ["ipv4-prefixes[0]", "10.0.2.16/28 is outside vswitch-cidr-block 10.0.1.0/24"]),
        ({"ipv4-prefixes": ["10.0.1.16/28", "10.0.0.0/16"]}, ["ipv4-prefixes[1]", "outside"]),
        ({"ipv4-prefixes": ["10.0.1.17/28"]}, ["ipv4-prefixes[0]", "host bits set"]),
        ({"ipv4-prefixes": ["2001:db8:1::/80"]}, ["ipv4-prefixes[0]", "not an IPv4 CIDR"]),
        ({"ipv4-prefixes": [28]}, ["ipv4-prefixes[0]", "must be a CIDR string"]),
        ({"ipv4-prefixes": {"a": "10.0.1.16/28"}}, ["ipv4-prefixes", "must be an array"]),
        ({**V6, "ipv6-prefixes": ["2001:db8:2::/80"]},
         ["ipv6-prefixes[0]", "is outside vswitch-ipv6-cidr-block 2001:db8:1::/64"]),
        ({**V6, "ipv6-prefixes": ["10.0.1.16/28"]}, ["ipv6-prefixes[0]", "not an IPv6 CIDR"]),
        ({**V6, "ipv6-prefixes": ["2001:db8:1::%x/80"]}, ["ipv6-prefixes[0]", "zone"]),
        ({"ipv6-prefixes": ["2001:db8:1:0:1::/80"]},
         ["vswitch-ipv6-cidr-block", "missing while other IPv6 fields are set"]),
        ({"ipv6-prefixes": ["2001:db8:1:0:1::/80"], "ipv6-gateway": "fe80::1"},
         ["vswitch-ipv6-cidr-block", "missing"]),
        ({"ipv6-prefixes": ["2001:db8:1:0:1::/80"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64"},
         ["ipv6-gateway", "missing"]),
    ],
)
def test_invalid_prefix_sets_the_eni_aside(fields, needles):
    message = refusal(make_doc({SECOND_MAC: second(**fields)}))
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize(
    "second_prefixes, third_prefixes, needles",
    [
        (["10.0.1.16/28"], ["10.0.1.16/28"],
         [f"ENI {SECOND_MAC}: ipv4-prefixes[0]", "10.0.1.16/28 overlaps 10.0.1.16/28",
          f"delegated to ENI {THIRD_MAC}"]),
        (["10.0.1.16/28"], ["10.0.1.0/26"], ["ENI", "ipv4-prefixes[0]", "overlaps"]),
        ([], ["10.0.1.0/28"],
         [f"ENI {THIRD_MAC}: ipv4-prefixes[0]",
          f"10.0.1.0/28 holds 10.0.1.10, an address of ENI {SECOND_MAC}"]),
    ],
)
def test_a_prefix_leads_to_one_eni_only(second_prefixes, third_prefixes, needles):
    doc = make_doc({
        SECOND_MAC: second(**{"ipv4-prefixes": second_prefixes}),
        THIRD_MAC: eni_fields("10.0.1.40", "10.0.1.0/24", "10.0.1.253",
                              **{"ipv4-prefixes": third_prefixes}),
    })
    with pytest.raises(InvalidInput) as info:
        parse_metadata(json.dumps(doc))
    for needle in needles:
        assert needle in info.value.message, (needle, info.value.message)


def test_the_same_prefix_numbers_in_both_families_do_not_clash():
    doc = make_doc({
        SECOND_MAC: second(**{"ipv4-prefixes": ["10.0.1.16/28"]}),
        THIRD_MAC: eni_fields("10.0.1.40", "10.0.1.0/24", "10.0.1.253",
                              **{**V6, "ipv6-prefixes": ["2001:db8:1:0:1::/80"]}),
    })
    assert parse(doc).invalid == ()
