"""Documents as the service writes them: a file saved from `curl .../meta-data/all`
works as it is, provided it holds the fields (issue 12 §1).

The shapes follow the service's recorded answers (cloud-init's Aliyun
fixtures): list values kept as text (`"ipv6s": "[a,b]"`, `private-ipv4s` as
JSON text), and a thin primary entry (gateway, netmask, network-interface-id).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from eni_agent.errors import InvalidInput
from eni_agent.model import parse_metadata

from tests.harness.commands import REPO
from tests.harness.documents import (SECOND_MAC, THIRD_MAC, assert_one_line, eni_fields,
                                     example_doc, macs_of, make_doc, parse, second_eni)
from tests.harness.enis import PRIMARY_MAC

ALL_PATH = REPO / "examples" / "metadata-all.json"
ALL_PRIMARY, ALL_SECOND = "00:16:3e:14:59:58", "00:16:3e:39:43:27"
THIN = {"gateway": "10.0.0.253", "netmask": "255.255.255.0",
        "network-interface-id": "eni-bp1primary"}


def test_a_saved_meta_data_all_document_works_as_it_is():
    metadata = parse_metadata(ALL_PATH.read_bytes(), str(ALL_PATH))

    assert metadata.primary_mac == ALL_PRIMARY
    assert metadata.invalid == ()
    (eni,) = metadata.secondary_enis
    assert eni.mac == ALL_SECOND and eni.eni_id == "eni-bp1second0000000000"
    assert eni.ips == (IPv4Address("172.16.102.10"), IPv4Address("172.16.102.11"))
    assert eni.cidr == IPv4Network("172.16.102.0/24")
    assert eni.ipv6s == (IPv6Address("2408:4005:3de:8a00:1::10"),
                         IPv6Address("2408:4005:3de:8a00:1::11"))
    assert eni.ipv6_cidr == IPv6Network("2408:4005:3de:8a00::/64")
    assert eni.ipv4_prefixes == (IPv4Network("172.16.102.32/28"),)
    assert eni.ipv6_prefixes == (IPv6Network("2408:4005:3de:8a00:2::/80"),)


def test_a_thin_primary_entry_is_fine_and_is_no_eni():
    doc = example_doc()
    macs_of(doc)[PRIMARY_MAC] = dict(THIN)
    metadata = parse(doc)
    assert metadata.invalid == ()
    assert [e.mac for e in metadata.enis] == [SECOND_MAC]
    assert [e.mac for e in metadata.secondary_enis] == [SECOND_MAC]


@pytest.mark.parametrize("entry", [{}, "x", [], {"gateway": "bad"}, {"primary-ip-address": 5}],
                         ids=repr)
def test_whatever_the_primary_entry_holds_only_its_mac_counts(entry):
    doc = example_doc()
    macs_of(doc)[PRIMARY_MAC] = entry
    metadata = parse(doc)
    assert (metadata.primary_mac, metadata.invalid) == (PRIMARY_MAC, ())
    assert [e.mac for e in metadata.secondary_enis] == [SECOND_MAC]


def test_a_thin_secondary_entry_is_set_aside_naming_what_is_missing():
    doc = example_doc()
    macs_of(doc)[SECOND_MAC] = {"vpc-cidr-block": "10.0.0.0/16", "netmask": "255.255.255.0"}
    (refused,) = parse(doc).invalid
    assert refused.mac == SECOND_MAC and refused.eni_id is None
    assert "vswitch-cidr-block: missing" in refused.message


@pytest.mark.parametrize(
    "field, text, expected",
    [
        ("private-ipv4s", '["10.0.1.10","10.0.1.11"]', ("10.0.1.10", "10.0.1.11")),
        ("private-ipv4s", '[ "10.0.1.11" ]', ("10.0.1.10", "10.0.1.11")),
        ("private-ipv4s", "[10.0.1.10, 10.0.1.12]", ("10.0.1.10", "10.0.1.12")),
        ("private-ipv4s", "[]", ("10.0.1.10",)),
        ("private-ipv4s", " [] ", ("10.0.1.10",)),
    ],
)
def test_ipv4_lists_in_text_form(field, text, expected):
    doc = example_doc()
    second_eni(doc)[field] = text
    (eni,) = parse(doc).secondary_enis
    assert eni.ips == tuple(IPv4Address(ip) for ip in expected)


@pytest.mark.parametrize("text", ["[2001:db8:1::10,2001:db8:1::11]", '["2001:db8:1::10", '
                                  '"2001:db8:1::11"]', "[ 2001:db8:1::10 , 2001:db8:1::11 ]"])
def test_ipv6s_in_text_form(text):
    fields = eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253", ipv6s=text,
                        **{"vswitch-ipv6-cidr-block": "2001:db8:1::/64", "ipv6-gateway": "fe80::1"})
    (eni,) = parse(make_doc({SECOND_MAC: fields})).secondary_enis
    assert eni.ipv6s == (IPv6Address("2001:db8:1::10"), IPv6Address("2001:db8:1::11"))


def test_netmask_stands_in_for_a_missing_vswitch_cidr_block_in_text_forms():
    fields = {"primary-ip-address": "172.16.102.10", "private-ipv4s": '["172.16.102.10"]',
              "netmask": "255.255.255.0", "gateway": "172.16.102.253"}
    (eni,) = parse(make_doc({SECOND_MAC: fields})).secondary_enis
    assert eni.cidr == IPv4Network("172.16.102.0/24")


@pytest.mark.parametrize(
    "field, value, needles",
    [
        ("private-ipv4s", "10.0.1.10", ["private-ipv4s", "must be an array"]),
        ("private-ipv4s", "[10.0.1.10", ["private-ipv4s", "must be an array"]),
        ("private-ipv4s", "[10.0.1.10,,10.0.1.11]", ["private-ipv4s[1]", "not an IPv4 address"]),
        ("private-ipv4s", "[10.0.1.x]", ["private-ipv4s[0]", "not an IPv4 address"]),
        ("private-ipv4s", '["10.0.1.10", 7]', ["private-ipv4s[1]", "must be an IPv4 address"]),
        ("private-ipv4s", '{"a": 1}', ["private-ipv4s", "must be an array"]),
        ("ipv6s", "[2001:db8:1::zz]", ["ipv6s[0]", "not an IPv6 address"]),
        ("ipv4-prefixes", "[10.0.1.16/33]", ["ipv4-prefixes[0]", "not an IPv4 CIDR"]),
        ("ipv4-prefixes", "10.0.1.16/28", ["ipv4-prefixes", "must be an array"]),
        ("ipv6-prefixes", "[2001:db8:1::1/80]", ["ipv6-prefixes[0]", "not an IPv6 CIDR"]),
    ],
)
def test_a_value_that_cannot_be_parsed_is_invalid_naming_the_field(field, value, needles):
    doc = example_doc()
    second_eni(doc).update({"ipv6s": ["2001:db8:1::10"], "ipv6-gateway": "fe80::1",
                            "vswitch-ipv6-cidr-block": "2001:db8:1::/64"})
    second_eni(doc)[field] = value
    (refused,) = parse(doc).invalid
    assert_one_line(refused.message)
    assert refused.message.startswith("invalid metadata metadata: ENI 00:16:3e:00:01:01 "
                                      "(eni-bp1second): ")
    for needle in needles:
        assert needle in refused.message, (needle, refused.message)


def test_unparseable_text_refuses_only_that_eni_and_an_address_on_two_enis_still_refuses_all():
    doc = make_doc({
        SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.253"),
        THIRD_MAC: eni_fields("10.0.1.20", "10.0.1.0/24", "10.0.1.253"),
    })
    macs_of(doc)[THIRD_MAC]["private-ipv4s"] = "[10.0.1.20"
    metadata = parse(doc)
    assert [e.mac for e in metadata.secondary_enis] == [SECOND_MAC]
    assert [bad.mac for bad in metadata.invalid] == [THIRD_MAC]

    macs_of(doc)[THIRD_MAC]["private-ipv4s"] = '["10.0.1.20","10.0.1.10"]'
    with pytest.raises(InvalidInput) as info:
        parse(doc)
    assert "10.0.1.10 is also listed on ENI" in info.value.message


def test_text_and_json_forms_give_equal_metadata():
    doc = example_doc()
    text = json.loads(json.dumps(doc))
    second_eni(text)["private-ipv4s"] = json.dumps(second_eni(doc)["private-ipv4s"])
    assert parse(text) == parse(doc)


def test_listed_macs_are_the_primary_and_every_eni_valid_or_not():
    doc = make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.2.253"),
                    THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.253")})
    macs_of(doc)[PRIMARY_MAC] = dict(THIN)
    metadata = parse(doc)
    assert [e.mac for e in metadata.enis] == [THIRD_MAC]
    assert metadata.listed_macs == {PRIMARY_MAC, SECOND_MAC, THIRD_MAC}
