"""Valid metadata documents parse into the normalised model."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from eni_agent.model import Metadata, parse_metadata

from tests.harness.documents import (EXAMPLE_BYTES, SECOND_MAC, THIRD_MAC, eni_fields, example_doc,
                                     macs_of, make_doc, parse, second_eni)
from tests.harness.enis import PRIMARY_MAC


def ips(*texts: str) -> tuple[IPv4Address, ...]:
    return tuple(IPv4Address(text) for text in texts)


def test_example_parses():
    metadata = parse_metadata(EXAMPLE_BYTES, "examples/metadata.json")

    assert metadata.primary_mac == PRIMARY_MAC
    assert [e.mac for e in metadata.enis] == [PRIMARY_MAC, SECOND_MAC]
    (second,) = metadata.secondary_enis
    assert second.mac == SECOND_MAC
    assert second.eni_id == "eni-bp1second"
    assert second.primary_ip == IPv4Address("10.0.1.10")
    assert second.ips == ips("10.0.1.10", "10.0.1.11")
    assert second.cidr == IPv4Network("10.0.1.0/24")
    assert second.gateway == IPv4Address("10.0.1.253")
    assert second.name == "eni-bp1second (00:16:3e:00:01:01)"


@pytest.mark.parametrize("as_type", [bytes, str])
def test_bytes_and_text_parse_alike(as_type):
    data = EXAMPLE_BYTES if as_type is bytes else EXAMPLE_BYTES.decode()
    assert parse_metadata(data) == parse_metadata(EXAMPLE_BYTES)


@pytest.mark.parametrize(
    "top_mac, key_mac",
    [
        ("00:16:3E:00:00:01", "00:16:3e:00:01:01"),  # upper-case top-level mac
        ("00:16:3e:00:00:01", "00:16:3E:00:01:01"),  # upper-case key
        ("00:16:3E:00:00:01", "00:16:3E:00:01:01"),  # both
    ],
)
def test_mac_case_is_normalised(top_mac, key_mac):
    doc = example_doc()
    doc["mac"] = top_mac
    table = macs_of(doc)
    table[key_mac] = table.pop(SECOND_MAC)
    table[top_mac] = table.pop(PRIMARY_MAC)

    metadata = parse(doc)

    assert metadata.primary_mac == PRIMARY_MAC
    assert [e.mac for e in metadata.enis] == [PRIMARY_MAC, SECOND_MAC]
    assert [e.mac for e in metadata.secondary_enis] == [SECOND_MAC]


def test_primary_matched_case_insensitively_against_its_key():
    doc = example_doc()
    doc["mac"] = PRIMARY_MAC.upper()  # key stays lower-case
    assert [e.mac for e in parse(doc).secondary_enis] == [SECOND_MAC]


@pytest.mark.parametrize(
    "where",
    ["top", "network", "interfaces", "eni"],
)
def test_unknown_fields_are_ignored(where):
    doc = example_doc()
    extra = {"future-field": {"nested": [1, 2.5, None, True]}, "x-list": ["fe80::1", 7]}
    target = {"top": doc, "network": doc["network"], "interfaces": doc["network"]["interfaces"],
              "eni": second_eni(doc)}[where]
    target.update(extra)
    assert parse(doc) == parse_metadata(EXAMPLE_BYTES)


@pytest.mark.parametrize(
    "primary, private, expected",
    [
        ("10.0.1.10", ["10.0.1.10", "10.0.1.11"], ("10.0.1.10", "10.0.1.11")),
        ("10.0.1.10", ["10.0.1.11", "10.0.1.10"], ("10.0.1.10", "10.0.1.11")),  # primary first
        ("10.0.1.10", ["10.0.1.11", "10.0.1.11"], ("10.0.1.10", "10.0.1.11")),  # de-duplicated
        ("10.0.1.10", ["10.0.1.12", "10.0.1.11"], ("10.0.1.10", "10.0.1.12", "10.0.1.11")),
        ("10.0.1.10", [], ("10.0.1.10",)),
        ("10.0.1.10", None, ("10.0.1.10",)),  # private-ipv4s missing: just the primary
        (None, ["10.0.1.11", "10.0.1.10"], ("10.0.1.11", "10.0.1.10")),  # no primary: first one
        ("", ["10.0.1.11"], ("10.0.1.11",)),  # empty primary counts as missing
    ],
)
def test_primary_ip_first_and_deduplicated(primary, private, expected):
    doc = example_doc()
    fields = second_eni(doc)
    for key, value in (("primary-ip-address", primary), ("private-ipv4s", private)):
        if value is None:
            del fields[key]
        else:
            fields[key] = value

    (eni,) = parse(doc).secondary_enis

    assert eni.ips == ips(*expected)
    assert eni.primary_ip == eni.ips[0]


@pytest.mark.parametrize(
    "ip, netmask, cidr",
    [
        ("10.0.1.10", "255.255.255.0", "10.0.1.0/24"),
        ("10.0.17.5", "255.255.240.0", "10.0.16.0/20"),
        ("172.16.200.9", "255.255.0.0", "172.16.0.0/16"),
        ("192.168.3.130", "255.255.255.128", "192.168.3.128/25"),
    ],
)
def test_missing_cidr_is_derived_from_netmask(ip, netmask, cidr):
    net = IPv4Network(cidr)
    gateway = str(net.broadcast_address - 1)
    fields = eni_fields(ip, cidr, gateway, netmask=netmask)
    del fields["vswitch-cidr-block"]

    (eni,) = parse(make_doc({SECOND_MAC: fields})).secondary_enis

    assert eni.cidr == net


def test_primary_eni_is_excluded_and_enis_sorted_by_mac():
    doc = make_doc({
        THIRD_MAC: eni_fields("10.0.2.10", "10.0.2.0/24", "10.0.2.1"),
        SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.0.1.1"),
    })
    metadata = parse(doc)

    assert [e.mac for e in metadata.enis] == [PRIMARY_MAC, SECOND_MAC, THIRD_MAC]
    assert [e.mac for e in metadata.secondary_enis] == [SECOND_MAC, THIRD_MAC]


def test_primary_not_listed_means_every_eni_is_secondary():
    doc = example_doc()
    doc["mac"] = "00:16:3e:ff:ff:ff"
    assert [e.mac for e in parse(doc).secondary_enis] == [PRIMARY_MAC, SECOND_MAC]


def test_eni_without_id_is_named_by_mac():
    doc = example_doc()
    del second_eni(doc)["network-interface-id"]
    (eni,) = parse(doc).secondary_enis
    assert eni.eni_id is None
    assert eni.name == SECOND_MAC


def test_no_secondary_enis_is_valid():
    doc = example_doc()
    del macs_of(doc)[SECOND_MAC]
    assert parse(doc).secondary_enis == ()


def test_metadata_is_frozen():
    metadata = parse_metadata(EXAMPLE_BYTES)
    assert isinstance(metadata, Metadata)
    with pytest.raises(AttributeError):
        metadata.primary_mac = "00:16:3e:00:00:02"  # type: ignore[misc]
    assert hash(metadata.enis[0]) == hash(parse_metadata(EXAMPLE_BYTES).enis[0])


def test_utf8_bom_is_accepted_in_bytes():
    assert parse_metadata(b"\xef\xbb\xbf" + EXAMPLE_BYTES) == parse_metadata(EXAMPLE_BYTES)


def test_document_of_exactly_max_size_is_read():
    from eni_agent.model import MAX_DOCUMENT_BYTES

    data = EXAMPLE_BYTES.rstrip()
    data += b" " * (MAX_DOCUMENT_BYTES - len(data))
    assert len(data) == MAX_DOCUMENT_BYTES
    assert parse_metadata(data) == parse_metadata(EXAMPLE_BYTES)
