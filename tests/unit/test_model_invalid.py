"""Invalid metadata: a document that is wrong as a whole or between ENIs raises
InvalidInput (exit code 4) with a one-line message naming the ENI and the field;
an ENI whose own fields are wrong is set aside (`Metadata.invalid`) with that
same message, and the others stand. Nothing else escapes."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from eni_agent.errors import ExitCode, InvalidInput
from eni_agent.model import MAX_DOCUMENT_BYTES, InvalidEni, parse_metadata

from tests.harness.documents import (EXAMPLE_BYTES, SECOND_MAC, THIRD_MAC, assert_one_line,
                                     eni_fields, example_doc, macs_of, second_eni)
from tests.harness.enis import PRIMARY_MAC

E2 = f"ENI {SECOND_MAC}"


def expect_invalid(data: bytes | str, *needles: str) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_metadata(data, "doc.json")
    error = info.value
    assert error.exit_code == ExitCode.INVALID_INPUT == 4
    assert_one_line(error.message)
    assert error.message == str(error)
    assert error.message.startswith("invalid metadata doc.json: ")
    for needle in needles:
        assert needle in error.message, (needle, error.message)
    return error.message


def expect_invalid_eni(data: bytes | str, *needles: str, mac: str = SECOND_MAC) -> str:
    """The document stands; the ENI `mac` alone is set aside, with the message
    `InvalidInput` would give."""
    metadata = parse_metadata(data, "doc.json")
    (refused,) = metadata.invalid
    assert isinstance(refused, InvalidEni) and refused.mac == mac
    assert mac not in {eni.mac for eni in metadata.enis}
    assert {eni.mac for eni in metadata.enis} == {PRIMARY_MAC}  # the example's primary stands
    assert_one_line(refused.message)
    assert refused.message.startswith("invalid metadata doc.json: ")
    for needle in needles:
        assert needle in refused.message, (needle, refused.message)
    if refused.eni_id:
        assert f"({refused.eni_id})" in refused.message
    return refused.message


# -- documents that are not JSON, or not a JSON object ----------------------------

@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"{", b"}", b"{'mac': 'x'}", b'{"mac": }', b"[1,]", b'{"mac": "a",}',
     b"nul", b"0x10", b"{} {}", b'{"mac": "a"} x', b"\x00", b'{"a": NaN'],
    ids=repr,
)
def test_malformed_json(data):
    expect_invalid(data, "not valid JSON")


def test_every_torn_prefix_of_the_example_is_refused():
    """A torn write leaves a prefix of the file; none of them may be accepted."""
    whole = EXAMPLE_BYTES.rstrip()
    accepted, other = [], []
    for n in range(len(whole)):
        try:
            parse_metadata(whole[:n])
            accepted.append(n)
        except InvalidInput as e:
            if "\n" in e.message:
                other.append((n, e.message))
        except Exception as e:  # noqa: BLE001 - what we are checking for
            other.append((n, repr(e)))
    assert accepted == [] and other == []


@pytest.mark.parametrize(
    "value, kind",
    [([], "an array"), ([{"mac": PRIMARY_MAC}], "an array"), ("x", "a string"), (1, "a number"),
     (1.5, "a number"), (None, "null"), (True, "a boolean")],
)
def test_document_not_an_object(value, kind):
    expect_invalid(json.dumps(value), "document", kind)


# -- semantic errors: (id, mutation of the example, words the message must hold) --

def _set(field: str, value: Any) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        second_eni(doc)[field] = value
    return mutate


def _drop(*fields: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        for field in fields:
            del second_eni(doc)[field]
    return mutate


def _top(key: str, value: Any = ...) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    return mutate


def _rekey(new_key: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        table = macs_of(doc)
        table[new_key] = table.pop(SECOND_MAC)
    return mutate


def _add_eni(mac: str, fields: dict) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        macs_of(doc)[mac] = fields
    return mutate


def _set_path(path: tuple[str, ...], value: Any) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


# The document as a whole, or between ENIs: the whole document is refused.
DOCUMENT_CASES = [
    # the primary MAC at the top
    ("missing mac", _top("mac"), ["mac", "missing"]),
    ("mac not a MAC", _top("mac", "00:16:3e:00:00"), ["mac", "not a MAC address"]),
    ("mac with dashes", _top("mac", "00-16-3e-00-00-01"), ["mac", "not a MAC address"]),
    ("mac not hex", _top("mac", "zz:16:3e:00:00:01"), ["mac", "not a MAC address"]),
    ("mac empty", _top("mac", ""), ["mac", "not a MAC address"]),
    ("mac a number", _top("mac", 95142842369), ["mac", "not a MAC address"]),
    ("mac null", _top("mac", None), ["mac", "not a MAC address"]),
    # the tree down to the MAC table
    ("network missing", _top("network"), ["network", "missing"]),
    ("interfaces missing", _set_path(("network",), {}), ["network.interfaces", "missing"]),
    ("network an array", _set_path(("network",), []), ["network.interfaces", "missing"]),
    ("macs an array", _set_path(("network", "interfaces", "macs"), []),
     ["network.interfaces.macs", "must be an object", "an array"]),
    # MACs as keys
    ("key not a MAC", _rekey("eth1"), ['ENI "eth1"', "not a MAC address"]),
    ("key short", _rekey("00:16:3e:00:01"), ['ENI "00:16:3e:00:01"', "not a MAC address"]),
    ("key multicast", _rekey("01:00:5e:00:00:01"), ["ENI 01:00:5e:00:00:01", "not a unicast"]),
    ("key all zero", _rekey("00:00:00:00:00:00"), ["ENI 00:00:00:00:00:00", "not a unicast"]),
    ("same MAC twice in other case", _add_eni(SECOND_MAC.upper(), eni_fields(
        "10.0.1.20", "10.0.1.0/24", "10.0.1.253")), [E2, "listed twice"]),
    # one IP on two ENIs
    ("same ip on two ENIs",
     _add_eni(THIRD_MAC, eni_fields(["10.0.1.20", "10.0.1.11"], "10.0.1.0/24", "10.0.1.253")),
     [f"ENI {THIRD_MAC}", "10.0.1.11 is also listed on ENI " + SECOND_MAC]),
    ("primary ip of one is private of another", _add_eni(THIRD_MAC, eni_fields(
        "10.0.1.10", "10.0.1.0/24", "10.0.1.253")), ["10.0.1.10", SECOND_MAC, THIRD_MAC]),
]

# One ENI's own fields: that ENI is set aside, the rest stands.
ENI_CASES = [
    # the ENI's entry and its id
    ("ENI fields an array", _set_path(("network", "interfaces", "macs", SECOND_MAC), []),
     [E2, "must be an object", "an array"]),
    ("ENI fields a string", _set_path(("network", "interfaces", "macs", SECOND_MAC), "10.0.1.10"),
     [E2, "must be an object", "a string"]),
    ("eni id a number", _set("network-interface-id", 5), [E2, "network-interface-id"]),
    ("eni id with a space", _set("network-interface-id", "eni 1"), [E2, "network-interface-id"]),
    ("eni id with a newline", _set("network-interface-id", "eni\n1"), [E2, "network-interface-id"]),
    # invalid IP in each field
    ("primary ip octet 300", _set("primary-ip-address", "10.0.1.300"),
     [E2, "primary-ip-address", "not an IPv4 address"]),
    ("primary ip leading zeros", _set("primary-ip-address", "010.000.001.010"),
     [E2, "primary-ip-address", "not an IPv4 address"]),
    ("primary ip IPv6", _set("primary-ip-address", "fe80::1"),
     [E2, "primary-ip-address", "not an IPv4 address"]),
    ("primary ip with space", _set("primary-ip-address", " 10.0.1.10"),
     [E2, "primary-ip-address", "not an IPv4 address"]),
    ("private ip word", _set("private-ipv4s", ["10.0.1.10", "abc"]),
     [E2, "private-ipv4s[1]", "not an IPv4 address"]),
    ("private ip empty", _set("private-ipv4s", ["10.0.1.10", ""]), [E2, "private-ipv4s[1]"]),
    ("gateway 3 octets", _set("gateway", "10.0.1"), [E2, "gateway", "not an IPv4 address"]),
    ("netmask octet 256", _set("netmask", "255.255.255.256"), [E2, "netmask"]),
    ("netmask not contiguous", _set("netmask", "255.0.255.0"), [E2, "netmask"]),
    ("cidr prefix 33", _set("vswitch-cidr-block", "10.0.1.0/33"),
     [E2, "vswitch-cidr-block", "not an IPv4 CIDR"]),
    ("cidr a word", _set("vswitch-cidr-block", "vsw-b"), [E2, "vswitch-cidr-block"]),
    ("cidr empty", _set("vswitch-cidr-block", ""), [E2, "vswitch-cidr-block"]),
    ("cidr IPv6", _set("vswitch-cidr-block", "fd00::/64"), [E2, "vswitch-cidr-block"]),
    # wrong JSON types
    ("private-ipv4s a string", _set("private-ipv4s", "10.0.1.10"),
     [E2, "private-ipv4s", "must be an array", "a string"]),
    ("private-ipv4s an object", _set("private-ipv4s", {"0": "10.0.1.10"}),
     [E2, "private-ipv4s", "must be an array", "an object"]),
    ("primary ip as integer", _set("primary-ip-address", 167772426),  # == 10.0.1.10
     [E2, "primary-ip-address", "must be an IPv4 address string", "a number"]),
    ("private ip as integer", _set("private-ipv4s", [167772426]),
     [E2, "private-ipv4s[0]", "must be an IPv4 address string"]),
    ("gateway as integer", _set("gateway", 167772669),  # == 10.0.1.253
     [E2, "gateway", "must be an IPv4 address string"]),
    ("gateway as list", _set("gateway", ["10.0.1.253"]), [E2, "gateway", "an array"]),
    ("netmask as integer", _set("netmask", 24), [E2, "netmask", "must be an IPv4 address string"]),
    ("primary ip as boolean", _set("primary-ip-address", True),
     [E2, "primary-ip-address", "a boolean"]),
    ("cidr as integer", _set("vswitch-cidr-block", 167772416),
     [E2, "vswitch-cidr-block", "must be a CIDR string", "a number"]),
    ("cidr as object", _set("vswitch-cidr-block", {"a": 1}),
     [E2, "vswitch-cidr-block", "an object"]),
    # addresses against the vswitch CIDR
    ("primary outside cidr", _set("primary-ip-address", "10.0.2.10"),
     [E2, "primary-ip-address", "10.0.2.10 is outside vswitch-cidr-block 10.0.1.0/24"]),
    ("private outside cidr", _set("private-ipv4s", ["10.0.1.10", "192.168.1.11"]),
     [E2, "private-ipv4s", "192.168.1.11 is outside"]),
    ("gateway outside cidr", _set("gateway", "10.0.2.1"),
     [E2, "gateway", "10.0.2.1 is outside"]),
    ("gateway is an ENI ip", _set("gateway", "10.0.1.11"),
     [E2, "gateway", "10.0.1.11 is also an address of the ENI"]),
    ("gateway is the primary ip", _set("gateway", "10.0.1.10"), [E2, "gateway", "10.0.1.10"]),
    ("network address as primary", _set("primary-ip-address", "10.0.1.0"),
     [E2, "primary-ip-address", "not a host address"]),
    ("broadcast as private ip", _set("private-ipv4s", ["10.0.1.10", "10.0.1.255"]),
     [E2, "private-ipv4s", "10.0.1.255 is not a host address"]),
    ("network address as gateway", _set("gateway", "10.0.1.0"), [E2, "gateway", "not a host"]),
    ("broadcast as gateway", _set("gateway", "10.0.1.255"), [E2, "gateway", "not a host"]),
    ("cidr with host bits", _set("vswitch-cidr-block", "10.0.1.1/24"),
     [E2, "vswitch-cidr-block", "host bits set"]),
    ("netmask not matching cidr", _set("netmask", "255.255.0.0"),
     [E2, "netmask", "does not match vswitch-cidr-block 10.0.1.0/24"]),
    ("netmask given as hostmask", _set("netmask", "0.0.0.255"), [E2, "netmask"]),
    ("cidr prefix /31", _set("vswitch-cidr-block", "10.0.1.10/31"), [E2, "vswitch-cidr-block"]),
    ("cidr prefix /32", _set("vswitch-cidr-block", "10.0.1.10/32"), [E2, "vswitch-cidr-block"]),
    ("cidr prefix /7", _set("vswitch-cidr-block", "10.0.0.0/7"), [E2, "vswitch-cidr-block"]),
    ("cidr loopback", _set("vswitch-cidr-block", "127.0.0.0/24"), [E2, "not a unicast network"]),
    ("cidr link-local", _set("vswitch-cidr-block", "169.254.0.0/16"), [E2, "not a unicast"]),
    ("cidr multicast", _set("vswitch-cidr-block", "224.0.0.0/24"), [E2, "not a unicast"]),
    ("cidr this-network", _set("vswitch-cidr-block", "0.0.0.0/24"), [E2, "not a unicast"]),
    ("cidr reserved", _set("vswitch-cidr-block", "240.0.0.0/24"), [E2, "not a unicast"]),
    # missing pieces
    ("no ip at all", _drop("primary-ip-address", "private-ipv4s"), [E2, "no IP address"]),
    ("empty ips", lambda d: second_eni(d).update({"primary-ip-address": "", "private-ipv4s": []}),
     [E2, "no IP address"]),
    ("gateway missing", _drop("gateway"), [E2, "gateway", "missing"]),
    ("gateway null", _set("gateway", None), [E2, "gateway", "missing"]),
    ("cidr and netmask missing", _drop("vswitch-cidr-block", "netmask"),
     [E2, "vswitch-cidr-block", "missing"]),
    ("cidr missing, no ip to derive it", _drop("vswitch-cidr-block", "primary-ip-address",
                                               "private-ipv4s"), [E2, "vswitch-cidr-block"]),
]


@pytest.mark.parametrize("mutate, needles", [c[1:] for c in DOCUMENT_CASES],
                         ids=[c[0] for c in DOCUMENT_CASES])
def test_document_error(mutate, needles):
    doc = example_doc()
    mutate(doc)
    expect_invalid(json.dumps(doc), *needles)


@pytest.mark.parametrize("mutate, needles", [c[1:] for c in ENI_CASES],
                         ids=[c[0] for c in ENI_CASES])
def test_eni_error_sets_that_eni_aside(mutate, needles):
    doc = example_doc()
    mutate(doc)
    expect_invalid_eni(json.dumps(doc), *needles)


def test_gateway_equal_to_another_enis_ip():
    # Within one ENI this is refused (test above); across ENIs the kernel would
    # refuse the `default via <local address> onlink` route at apply time.
    doc = example_doc()
    macs_of(doc)[THIRD_MAC] = eni_fields("10.0.1.253", "10.0.1.0/24", "10.0.1.1")
    expect_invalid(json.dumps(doc), f"ENI {SECOND_MAC}: gateway",
                   f"10.0.1.253 is an address of ENI {THIRD_MAC}")


# -- duplicate keys in the JSON text --------------------------------------------------

_ENI = ('{"primary-ip-address": "10.0.1.10", "gateway": "10.0.1.253", '
        '"vswitch-cidr-block": "10.0.1.0/24"}')


def _text(macs: str, top: str = "") -> str:
    """A document's JSON text, written out so that keys can repeat."""
    return f'{{"mac": "{PRIMARY_MAC}", {top}"network": {{"interfaces": {{"macs": {{{macs}}}}}}}}}'


@pytest.mark.parametrize(
    "text, key",
    [
        (_text(f'"{SECOND_MAC}": {_ENI}', top=f'"mac": "{SECOND_MAC}", '), "mac"),
        (_text(f'"{SECOND_MAC}": {_ENI}, "{SECOND_MAC}": {_ENI}'), SECOND_MAC),
        (_text(f'"{SECOND_MAC}": ' + _ENI.replace(
            '"gateway": "10.0.1.253"', '"gateway": "10.0.1.253", "gateway": "10.0.1.1"')),
         "gateway"),
        (_text("", top='"network": {}, '), "network"),
    ],
    ids=["top-level mac", "MAC key", "gateway in an ENI", "network"],
)
def test_duplicate_json_keys(text, key):
    json.loads(text)  # the text itself is JSON; only the repeated key is wrong
    expect_invalid(text, "duplicate key", f'"{key}"')


def test_duplicate_mac_keys_differing_in_case():
    expect_invalid(_text(f'"{SECOND_MAC}": {_ENI}, "{SECOND_MAC.upper()}": {_ENI}'),
                   E2, "listed twice")


# -- hostile encodings and sizes ------------------------------------------------------

@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"\xc3\x28",
        EXAMPLE_BYTES.replace(b"eni-bp1second", b"eni-bp1sec\xffnd"),
        EXAMPLE_BYTES.replace(b"vsw-b", "vsw-\u00e9".encode("latin-1")),
        b"\xff\xfe" + b"{",  # a UTF-16 BOM in front of garbage
        # Valid documents in another encoding: JSON is UTF-8 (RFC 8259), and
        # json.loads(bytes) alone would guess UTF-16/32 and pass surrogates.
        EXAMPLE_BYTES.replace(b"vsw-b", b"vsw-\xed\xa0\x80"),  # CESU-8, in an ignored field
        EXAMPLE_BYTES.decode().encode("utf-16"),
        EXAMPLE_BYTES.decode().encode("utf-32-be"),
    ],
    ids=["lone 0xff", "bad continuation", "0xff in a string", "latin-1", "utf16-bom",
         "encoded surrogate", "utf-16", "utf-32"],
)
def test_non_utf8_bytes(data):
    expect_invalid(data, "not valid JSON")


@pytest.mark.parametrize("as_type", [bytes, str])
@pytest.mark.parametrize("how", ["padding", "big field"])
def test_document_over_one_mebibyte(as_type, how):
    if how == "padding":
        data = EXAMPLE_BYTES + b" " * MAX_DOCUMENT_BYTES
    else:
        doc = example_doc()
        doc["padding"] = "x" * MAX_DOCUMENT_BYTES
        data = json.dumps(doc).encode()
    expect_invalid(data if as_type is bytes else data.decode(), "larger than 1048576 bytes")


@pytest.mark.parametrize(
    "data",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"mac": "%s", "x": %s}' % (PRIMARY_MAC, "[" * 100_000 + "]" * 100_000),
        "[" * 100_000,  # and unterminated
    ],
    ids=["arrays", "objects", "inside the document", "unterminated"],
)
def test_deeply_nested_json(data):
    expect_invalid(data, "not valid JSON")


@pytest.mark.parametrize(
    "data",
    [
        "1" * 5000,
        '{"mac": "%s", "x": %s}' % (PRIMARY_MAC, "9" * 5000),
        json.dumps(example_doc()).replace('"10.0.1.10"', "1" * 5000, 1),
        "-" + "1" * 5000,
    ],
    ids=["bare", "extra field", "as an IP", "negative"],
)
def test_integer_with_5000_digits(data):
    expect_invalid(data, "not valid JSON")


def test_huge_values_are_cut_short_in_the_message():
    doc = example_doc()
    doc["mac"] = "x" * 10_000
    message = expect_invalid(json.dumps(doc), "mac", "not a MAC address")
    assert len(message) < 200


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\u2028b", "a\x85b", "a\x1cb", "\x00"],
                         ids=repr)
def test_control_characters_in_values_stay_on_one_line(value):
    doc = example_doc()
    doc["mac"] = value
    expect_invalid(json.dumps(doc), "mac")
    macs_of(doc)[value] = macs_of(doc).pop(SECOND_MAC)
    doc["mac"] = PRIMARY_MAC
    expect_invalid(json.dumps(doc), "key is not a MAC address")
