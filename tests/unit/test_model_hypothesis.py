"""Property tests: for any input, parse_metadata returns a Metadata (possibly
with some ENIs set aside as invalid, each with a one-line message naming it)
or raises a one-line InvalidInput; whatever validates satisfies the invariants."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eni_agent.errors import InvalidInput
from eni_agent.model import Metadata, metadata_from_tree, parse_metadata

from tests.harness.documents import assert_one_line, example_doc

# Bounded and reproducible: the same examples on every run, no example database.
BOUNDED = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=20,
)


def outcome(data: Any, parse=parse_metadata) -> Metadata | None:
    """Parse; a Metadata or None (for InvalidInput). Any other exception fails the test."""
    try:
        result = parse(data)
    except InvalidInput as e:
        assert_one_line(e.message)
        event("InvalidInput")
        return None
    assert isinstance(result, Metadata)
    event("valid except named ENIs" if result.invalid else "valid")
    check_invariants(result)
    return result


def check_invariants(metadata: Metadata) -> None:
    owner: dict[IPv4Address | IPv6Address, str] = {}
    assert metadata.primary_mac == metadata.primary_mac.lower()
    assert [e.mac for e in metadata.enis] == sorted({e.mac for e in metadata.enis})
    assert metadata.primary_mac not in {e.mac for e in metadata.secondary_enis}
    for eni in metadata.enis:
        assert eni.mac == eni.mac.lower() and len(eni.mac) == 17
        assert eni.ips and eni.primary_ip == eni.ips[0]
        assert len(set(eni.ips)) == len(eni.ips)
        hosts = (eni.cidr.network_address, eni.cidr.broadcast_address)
        for ip in (*eni.ips, eni.gateway):
            assert ip in eni.cidr and ip not in hosts, (ip, eni.cidr)
        assert eni.gateway not in eni.ips
        for ip in eni.ips + eni.ipv6s:
            assert owner.setdefault(ip, eni.mac) == eni.mac, f"{ip} on two ENIs"
        if eni.ipv6s or eni.ipv6_prefixes:  # IPv6: all three fields or none
            assert eni.ipv6_cidr is not None and eni.ipv6_gateway is not None
            assert len(set(eni.ipv6s)) == len(eni.ipv6s)
            for ip in eni.ipv6s:
                assert ip in eni.ipv6_cidr and ip != eni.ipv6_cidr.network_address
            assert eni.ipv6_gateway in eni.ipv6_cidr or eni.ipv6_gateway.is_link_local
            assert eni.ipv6_gateway not in eni.ipv6s
            assert all(prefix.subnet_of(eni.ipv6_cidr) for prefix in eni.ipv6_prefixes)
        else:
            assert eni.ipv6_cidr is None and eni.ipv6_gateway is None
        assert all(prefix.subnet_of(eni.cidr) for prefix in eni.ipv4_prefixes)
    for eni in metadata.enis:  # no ENI routes via an address the host holds
        assert eni.gateway not in owner and eni.ipv6_gateway not in owner
    prefixes = [(eni.mac, p) for eni in metadata.enis
                for p in eni.ipv4_prefixes + eni.ipv6_prefixes]
    for mac, prefix in prefixes:  # a prefix leads to one ENI only
        assert not [ip for ip, other in owner.items() if other != mac and ip in prefix]
        assert not [p for other, p in prefixes if other != mac and p.version == prefix.version
                    and p.overlaps(prefix)]
    valid = {eni.mac for eni in metadata.enis}
    assert [bad.mac for bad in metadata.invalid] == sorted({bad.mac for bad in metadata.invalid})
    for bad in metadata.invalid:  # set aside: named, one line, never the primary
        assert bad.mac == bad.mac.lower() and bad.mac not in valid
        assert bad.mac != metadata.primary_mac
        assert_one_line(bad.message)
        assert bad.message.startswith("invalid metadata ") and f"ENI {bad.mac}" in bad.message


# -- arbitrary input ------------------------------------------------------------------

@BOUNDED
@given(json_values)
def test_any_json_value(value):
    outcome(json.dumps(value))
    outcome(json.dumps(value).encode())
    outcome(value, parse=metadata_from_tree)


@BOUNDED
@given(st.binary(max_size=300))
def test_any_bytes(data):
    outcome(data)


@BOUNDED
@given(st.text(max_size=300))
def test_any_text(text):
    outcome(text)


@BOUNDED
@given(st.dictionaries(st.sampled_from(["mac", "network", "x"]), json_values, max_size=3))
def test_any_top_level_object(doc):
    outcome(json.dumps(doc))


# -- mutations of the valid example ---------------------------------------------------

def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside the document (dict keys and list indexes)."""
    paths = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) \
        else []
    for key, child in items:
        paths.append(prefix + (key,))
        paths.extend(_paths(child, prefix + (key,)))
    return paths


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


KINDS = st.sampled_from(["replace", "delete", "case"])


@settings(BOUNDED, max_examples=300)
@given(st.data())
def test_mutated_example(data):
    doc = example_doc()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = _parent(doc, path)
        kind = data.draw(KINDS, label="kind")
        if kind == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif kind == "delete":
            del parent[path[-1]]
        else:  # change the case of the key, and of the value if it is text
            change = data.draw(st.sampled_from([str.upper, str.lower, str.swapcase]),
                               label="case")
            key, value = path[-1], parent[path[-1]]
            if isinstance(value, str):
                parent[key] = value = change(value)
            if isinstance(key, str):
                del parent[key]
                parent[change(key)] = value
    outcome(json.dumps(doc))


# -- plausible documents: many validate, so the invariants get exercised ----------------

# Unicast MACs, one upper-case so that two keys can collide.
MACS = ["00:16:3e:00:00:01", "00:16:3e:00:01:01", "00:16:3e:00:02:01", "02:00:00:00:00:0a",
        "00:16:3E:00:01:01"]
# Small pools, so ENIs share IPs and IPs hit network, broadcast and other subnets.
# Weighted towards valid documents by repetition.
ips = st.builds("10.0.{}.{}".format, st.sampled_from([1] * 5 + [2]),
                st.sampled_from([1, 2, 3, 5, 10, 11, 12, 13, 14] * 3 + [0, 15, 16, 253, 255]))
gateways = st.sampled_from(["10.0.1.253"] * 8 + ["10.0.2.253", "10.0.1.1", "10.0.1.14"]) | ips
cidrs = st.sampled_from(["10.0.1.0/24"] * 4 + ["10.0.1.0/28", "10.0.2.0/24", "10.0.0.0/16"])
ip_lists = st.lists(ips, max_size=2)
NETMASKS = {"24": "255.255.255.0", "28": "255.255.255.240", "16": "255.255.0.0"}
ip6s = st.builds("2001:db8:{}::{}".format, st.sampled_from([1] * 4 + [2]),
                 st.sampled_from(["10", "11", "12", "", "1"]))
ip6_lists = st.lists(ip6s, max_size=2)
ip6_cidrs = st.sampled_from(["2001:db8:1::/64"] * 3 + ["2001:db8::/32", "fe80::/64"])
ip6_gateways = st.sampled_from(["fe80::1"] * 3 + ["2001:db8:1::1", "2001:db8:2::1"]) | ip6s
v6_field = st.sampled_from(["ipv6s", "vswitch-ipv6-cidr-block", "ipv6-gateway"])
prefixes4 = st.lists(st.sampled_from(["10.0.1.16/28", "10.0.1.32/28", "10.0.2.16/28",
                                      "10.0.1.0/28", "10.0.1.17/28"]), max_size=2)
prefixes6 = st.lists(st.sampled_from(["2001:db8:1:0:1::/80", "2001:db8:1:0:2::/80",
                                      "2001:db8:2::/80"]), max_size=2)


def as_text(items: list, quoted: bool) -> str:
    """A list as the service writes it in `meta-data/all`: JSON, or `[a,b]`."""
    return json.dumps(items) if quoted else "[" + ",".join(items) + "]"


@st.composite
def eni_docs(draw):
    cidr = draw(cidrs)
    fields = {"vswitch-cidr-block": cidr, "gateway": draw(gateways)}
    if draw(st.integers(0, 9)):
        fields["primary-ip-address"] = draw(ips)
    if draw(st.booleans()):
        fields["private-ipv4s"] = draw(ip_lists)
    if draw(st.integers(0, 3)) == 0:  # sometimes derive the CIDR from the netmask
        fields["netmask"] = NETMASKS[cidr.split("/")[1]]
        if draw(st.booleans()):
            del fields["vswitch-cidr-block"]
    if draw(st.booleans()):  # IPv6, usually all three fields
        v6 = {"ipv6s": draw(ip6_lists), "vswitch-ipv6-cidr-block": draw(ip6_cidrs),
              "ipv6-gateway": draw(ip6_gateways)}
        if draw(st.integers(0, 4)) == 0:
            del v6[draw(v6_field)]
        fields.update(v6)
    if draw(st.integers(0, 3)) == 0:
        fields["ipv4-prefixes"] = draw(prefixes4)
    if "vswitch-ipv6-cidr-block" in fields and draw(st.integers(0, 3)) == 0:
        fields["ipv6-prefixes"] = draw(prefixes6)
    for name in ("private-ipv4s", "ipv6s", "ipv4-prefixes", "ipv6-prefixes"):
        if name in fields and draw(st.integers(0, 3)) == 0:  # the service's text form
            fields[name] = as_text(fields[name], quoted=draw(st.booleans()))
    return fields


plausible_docs = st.fixed_dictionaries({
    "mac": st.sampled_from(MACS),
    "network": st.fixed_dictionaries({"interfaces": st.fixed_dictionaries({
        "macs": st.dictionaries(st.sampled_from(MACS), eni_docs(), max_size=3)})}),
})


@settings(BOUNDED, max_examples=400)
@given(plausible_docs)
def test_plausible_document(doc):
    outcome(json.dumps(doc))
