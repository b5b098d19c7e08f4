"""IPv6 fields of an ENI: all three (ipv6s, vswitch-ipv6-cidr-block,
ipv6-gateway) or none; an error in them sets that ENI aside with a one-line
message, an address on two ENIs is a one-line InvalidInput."""

from __future__ import annotations

import json
from ipaddress import IPv6Address, IPv6Network

import pytest

from eni_agent.errors import InvalidInput
from eni_agent.model import parse_metadata

from tests.harness.documents import (SECOND_MAC, THIRD_MAC, assert_one_line, eni_fields,
                                     example_doc, macs_of, second_eni)

V6 = {"ipv6s": ["2001:db8:1::10"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
      "ipv6-gateway": "fe80::1"}


def with_v6(**fields) -> dict:
    doc = example_doc()
    second_eni(doc).update(V6)
    for key, value in fields.items():
        if value is None:
            second_eni(doc).pop(key, None)
        else:
            second_eni(doc)[key] = value
    return doc


def parse_second(doc):
    return next(e for e in parse_metadata(json.dumps(doc)).enis if e.mac == SECOND_MAC)


def expect_invalid(doc, *needles: str) -> str:
    """The whole document is refused."""
    with pytest.raises(InvalidInput) as info:
        parse_metadata(json.dumps(doc))
    assert_one_line(info.value.message)
    for needle in needles:
        assert needle in info.value.message, (needle, info.value.message)
    return info.value.message


def expect_invalid_eni(doc, *needles: str, mac: str = SECOND_MAC) -> str:
    """The ENI `mac` alone is set aside; the document stands."""
    metadata = parse_metadata(json.dumps(doc))
    (refused,) = metadata.invalid
    assert refused.mac == mac and mac not in {eni.mac for eni in metadata.enis}
    assert_one_line(refused.message)
    for needle in needles:
        assert needle in refused.message, (needle, refused.message)
    return refused.message


@pytest.mark.parametrize(
    "fields, ipv6s, cidr, gateway",
    [
        ({}, ["2001:db8:1::10"], "2001:db8:1::/64", "fe80::1"),
        ({"ipv6-gateway": "2001:db8:1::1"}, ["2001:db8:1::10"], "2001:db8:1::/64",
         "2001:db8:1::1"),
        ({"ipv6s": ["2001:db8:1::10", "2001:DB8:1:0::11", "2001:db8:1::10"]},
         ["2001:db8:1::10", "2001:db8:1::11"], "2001:db8:1::/64", "fe80::1"),  # de-duplicated
        ({"ipv6s": ["2001:0db8:0001:0000:0000:0000:0000:0010"]}, ["2001:db8:1::10"],
         "2001:db8:1::/64", "fe80::1"),  # uncompressed form normalised
    ],
)
def test_valid_ipv6(fields, ipv6s, cidr, gateway):
    eni = parse_second(with_v6(**fields))
    assert eni.ipv6s == tuple(IPv6Address(ip) for ip in ipv6s)
    assert eni.ipv6_cidr == IPv6Network(cidr)
    assert eni.ipv6_gateway == IPv6Address(gateway)


@pytest.mark.parametrize(
    "fields",
    [
        {"ipv6s": None, "vswitch-ipv6-cidr-block": None, "ipv6-gateway": None},
        {"ipv6s": None},  # an IPv6 vswitch, but no IPv6 address for this ENI
        {"ipv6s": []},
        {"ipv6s": [], "vswitch-ipv6-cidr-block": "", "ipv6-gateway": ""},
    ],
)
def test_ipv4_only_eni(fields):
    eni = parse_second(with_v6(**fields))
    assert (eni.ipv6s, eni.ipv6_cidr, eni.ipv6_gateway) == ((), None, None)
    assert eni.ips  # IPv4 untouched


E2 = f"ENI {SECOND_MAC}"
CASES = [
    ("no cidr", {"vswitch-ipv6-cidr-block": None}, ["vswitch-ipv6-cidr-block", "missing"]),
    ("no gateway", {"ipv6-gateway": None}, ["ipv6-gateway", "missing"]),
    ("cidr only", {"ipv6s": None, "ipv6-gateway": None}, ["ipv6-gateway", "missing"]),
    ("gateway only", {"ipv6s": None, "vswitch-ipv6-cidr-block": None},
     ["vswitch-ipv6-cidr-block", "missing"]),
    ("ipv6s a string", {"ipv6s": "2001:db8:1::10"}, ["ipv6s", "must be an array"]),
    ("ipv6 as number", {"ipv6s": [42540766411282592856903984951653826576]},
     ["ipv6s[0]", "must be an IPv6 address string"]),
    ("ipv6 not an address", {"ipv6s": ["2001:db8:1::zz"]}, ["ipv6s[0]", "not an IPv6 address"]),
    ("IPv4 in ipv6s", {"ipv6s": ["10.0.1.10"]}, ["ipv6s[0]", "not an IPv6 address"]),
    ("v4-mapped", {"ipv6s": ["::ffff:10.0.1.10"]}, ["ipv6s[0]", "not a unicast"]),
    ("multicast", {"ipv6s": ["ff02::1"]}, ["ipv6s[0]", "not a unicast"]),
    ("loopback", {"ipv6s": ["::1"]}, ["ipv6s[0]", "not a unicast"]),
    ("unspecified", {"ipv6s": ["::"]}, ["ipv6s[0]", "not a unicast"]),
    ("outside cidr", {"ipv6s": ["2001:db8:2::10"]}, ["ipv6s[0]", "is outside"]),
    ("subnet-router anycast", {"ipv6s": ["2001:db8:1::"]}, ["ipv6s[0]", "anycast"]),
    ("cidr host bits", {"vswitch-ipv6-cidr-block": "2001:db8:1::1/64"},
     ["vswitch-ipv6-cidr-block", "not an IPv6 CIDR"]),
    ("cidr is IPv4", {"vswitch-ipv6-cidr-block": "10.0.1.0/24"}, ["vswitch-ipv6-cidr-block"]),
    ("cidr /8", {"vswitch-ipv6-cidr-block": "2000::/8", "ipv6s": ["2001:db8:1::10"]},
     ["vswitch-ipv6-cidr-block", "unusable prefix length"]),
    ("cidr /128", {"vswitch-ipv6-cidr-block": "2001:db8:1::10/128"},
     ["vswitch-ipv6-cidr-block", "unusable prefix length"]),
    ("cidr link-local", {"vswitch-ipv6-cidr-block": "fe80::/64", "ipv6s": ["fe80::10"]},
     ["vswitch-ipv6-cidr-block", "not a unicast network"]),
    ("cidr as number", {"vswitch-ipv6-cidr-block": 64},
     ["vswitch-ipv6-cidr-block", "must be a CIDR string"]),
    ("gateway outside, not link-local", {"ipv6-gateway": "2001:db8:2::1"},
     ["ipv6-gateway", "neither in 2001:db8:1::/64 nor link-local"]),
    ("gateway is the ENI's address", {"ipv6-gateway": "2001:db8:1::10"},
     ["ipv6-gateway", "also an address of the ENI"]),
    ("gateway multicast", {"ipv6-gateway": "ff02::2"}, ["ipv6-gateway", "not a unicast"]),
    ("gateway as list", {"ipv6-gateway": ["fe80::1"]},
     ["ipv6-gateway", "must be an IPv6 address string"]),
]


@pytest.mark.parametrize("fields, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_ipv6(fields, needles):
    expect_invalid_eni(with_v6(**fields), E2, *needles)


def test_same_ipv6_on_two_enis():
    doc = with_v6()
    macs_of(doc)[THIRD_MAC] = eni_fields("10.0.1.20", "10.0.1.0/24", "10.0.1.253", **V6)
    expect_invalid(doc, f"ENI {THIRD_MAC}", "ipv6s", "2001:db8:1::10 is also listed on ENI")


# -- scoped IPv6 literals ("addr%zone"): Python's ipaddress accepts them ------------------

SCOPED = [
    ("gateway with a zone", {"ipv6-gateway": "fe80::1%eth1"}),
    ("gateway zone with a newline", {"ipv6-gateway": "fe80::1%a\nb"}),
    ("address with a zone", {"ipv6s": ["2001:db8:1::10%eth1"]}),
    ("same address with and without a zone", {"ipv6s": ["2001:db8:1::10", "2001:db8:1::10%x"]}),
    ("gateway = address, hidden by a zone", {"ipv6-gateway": "2001:db8:1::10%x"}),
]


@pytest.mark.parametrize("fields", [c[1] for c in SCOPED], ids=[c[0] for c in SCOPED])
def test_scoped_ipv6_is_refused(fields):
    expect_invalid_eni(with_v6(**fields), E2)


def test_scoped_ipv6_outside_cidr_message_is_one_line():
    expect_invalid_eni(with_v6(ipv6s=["2001:db8:2::10%a\nb"]), E2, "ipv6s[0]")


def test_same_ipv6_on_two_enis_hidden_by_a_zone():
    doc = with_v6()
    macs_of(doc)[THIRD_MAC] = eni_fields("10.0.1.20", "10.0.1.0/24", "10.0.1.253",
                                         **{**V6, "ipv6s": ["2001:db8:1::10%x"]})
    expect_invalid_eni(doc, "2001:db8:1::10", mac=THIRD_MAC)
