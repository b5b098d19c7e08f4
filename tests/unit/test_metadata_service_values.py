"""How the metadata-service client passes values on, judges an
`all` entry complete, and tells a token from something else. Pure functions:
no network (the namespace tests run the client against a stand-in)."""

from __future__ import annotations

import pytest

from eni_agent.metadata_service import _TOKEN_RE, _complete, _macs_of, _value


@pytest.mark.parametrize("text, expected", [
    # text stripped; the text forms of lists are the model's to read
    (" 10.0.1.253\n", "10.0.1.253"),
    ("[2001:db8::10,2001:db8::11]\n", "[2001:db8::10,2001:db8::11]"),
    # from `all`, values that are not text as they are
    (["10.0.1.10"], ["10.0.1.10"]),
    (42, 42),
])
def test_values_go_to_the_model_as_the_service_wrote_them(text, expected):
    assert _value(text) == expected


BASE = {"primary-ip-address": "10.0.1.10", "private-ipv4s": ["10.0.1.10"],
        "gateway": "10.0.1.253", "vswitch-cidr-block": "10.0.1.0/24"}


@pytest.mark.parametrize("fields, complete", [
    (BASE, True),
    ({**{k: v for k, v in BASE.items() if k != "vswitch-cidr-block"},
      "netmask": "255.255.255.0"}, True),  # netmask stands in
    ({"vpc-cidr-block": "10.0.0.0/8", "netmask": "255.255.255.0"}, False),  # recorded, thin
    ({"gateway": "10.0.1.253", "netmask": "255.255.255.0",
      "network-interface-id": "eni-x"}, False),  # recorded primary
    ({k: v for k, v in BASE.items() if k != "private-ipv4s"}, False),
    ({**BASE, "ipv6s": ["2001:db8::10"]}, False),  # IPv6 without its CIDR and gateway
    ({**BASE, "ipv6s": ["2001:db8::10"], "vswitch-ipv6-cidr-block": "2001:db8::/64",
      "ipv6-gateway": "2001:db8::fffd"}, True),
])
def test_an_all_entry_is_used_only_when_complete(fields, complete):
    assert _complete(fields) is complete


@pytest.mark.parametrize("doc, macs", [
    ({"network": {"interfaces": {"macs": {"00:16:3e:00:01:01": {}}}}},
     {"00:16:3e:00:01:01": {}}),
    ({"mac": "00:16:3e:00:00:01"}, None),
    ({"network": {"interfaces": {"macs": "00:16:3e:00:01:01/"}}}, None),
    ({"network": []}, None),
])
def test_the_listing_in_an_all_document(doc, macs):
    assert _macs_of(doc) == macs


@pytest.mark.parametrize("token, plausible", [
    ("AQAEAFtw3ZOWvY5kvjN8ZGRjZWQ5NzMtZmQ4ZS00YjU0LWE1ZDQtMjVlNTBkZTg0MDE0", True),
    ("abc==", True),
    ("", False),
    ("<html><body>Service Unavailable</body></html>", False),
    ("two words", False),
    ("a" * 256, True),
    ("a" * 257, False),
    ("abc\x01def", False),
    ("t\u00f6ken", False),
])
def test_what_passes_for_a_token(token, plausible):
    assert bool(_TOKEN_RE.fullmatch(token)) is plausible
