"""`sync --metadata http://100.100.100.200` against the stand-in in each way
the real service answers: normal mode (no tokens: the token request is
refused) or hardened mode, connections closed after every answer or kept
alive, and `/latest/meta-data/all` served with thin entries (as recorded),
with complete entries (one GET is the whole fetch) or not at all (404: the
per-field tree). Every combination converges, with traffic; values the
service cannot mean are *invalid* (exit 4, naming the source and the field);
MACs are used exactly as the service lists them.
"""

from __future__ import annotations

import pytest

from tests.harness.agent import Agent, assert_one_error_line
from tests.harness.enis import make_eni
from tests.harness.expect import ipv6_problems
from tests.harness.kernel import dumps, guest_state, rule_sources
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import ALL_PATH, LISTING_PATH, serve_metadata
from tests.harness.prober import assert_traffic
from tests.harness.topology import ipv6_topology

TOKEN_PATH = "/latest/api/token"
MACS = "/latest/meta-data/network/interfaces/macs"


@pytest.fixture
def two_enis(topology_factory):
    return topology_factory([make_eni(1), make_eni(2, n_ips=3)])


@pytest.mark.parametrize("tokens, close, all_mode", [
    ("refused", True, "thin"),  # normal mode as documented: no tokens, Connection: close
    ("refused", True, "missing"),
    ("refused", False, "complete"),
    ("required", True, "complete"),
    ("required", False, "missing"),
    ("optional", True, "thin"),
    ("refused", "silent", "missing"),  # closed after each answer, without a header
], ids=lambda v: str(v))
def test_every_service_mode_converges_with_traffic(two_enis, tmp_path, tokens, close, all_mode):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, tokens=tokens, close=close, all=all_mode) as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.states() == {"eth1": "configured", "eth2": "configured"}
        assert res.stderr == ""
        seen = svc.requests()
        assert seen[0]["method"] == "PUT" and seen[0]["path"] == TOKEN_PATH, seen[:2]
        assert seen[0]["status"] == (403 if tokens == "refused" else 200)
        assert [r for r in seen if r["status"] not in (200, 403, 404)] == [], svc.show()
        assert [r for r in seen[1:] if r["status"] == 403] == [], svc.show()
        gets = [r["path"] for r in seen if r["method"] == "GET"]
        assert gets[0] == ALL_PATH
        if all_mode == "complete":
            assert gets == [ALL_PATH], "complete entries in `all`: one GET is the whole fetch"
        else:
            # the tree for what `all` lacks; of the primary its addresses (for
            # primary_secondary_ips), after the ENIs', and no prefixes
            assert f"{MACS}/00:16:3e:00:01:01/private-ipv4s" in gets
            primary = [i for i, p in enumerate(gets) if p.startswith(f"{MACS}/{t.primary.mac}/")]
            assert f"{MACS}/{t.primary.mac}/private-ipv4s" in gets, gets
            assert primary == list(range(primary[0], len(gets))), gets  # last
            assert not [p for p in gets if p.startswith(f"{MACS}/{t.primary.mac}/")
                        and "prefixes" in p], gets
            assert (LISTING_PATH in gets) == (all_mode == "missing")
        assert_traffic(t, ["10.0.0.5", *t.eni("eth1").ips, *t.eni("eth2").ips])

        again = agent.sync("--json", metadata=svc.url)
        assert again.code == 0 and again.states() == {"eth1": "in-sync", "eth2": "in-sync"}


def test_a_recorded_all_document_with_thin_entries_and_text_forms(topology_factory, tmp_path):
    """`all` keeps the service's text forms (`"ipv6s": "[a,b]"`, private-ipv4s
    as text): read from `all` (complete) they configure IPv4 and IPv6 alike."""
    t = ipv6_topology(topology_factory, [make_eni(1, n_ipv6=2), make_eni(2)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, all="complete") as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.states() == {"eth1": "configured", "eth2": "configured"}
        assert [r["path"] for r in svc.requests() if r["method"] == "GET"] == [ALL_PATH]
        assert ipv6_problems(t, "eth1") == []
        assert_traffic(t, ["10.0.1.10", "10.0.2.10"])


@pytest.mark.parametrize("all_mode", ["missing", "complete"])
@pytest.mark.parametrize("field, value", [
    ("private-ipv4s", "10.0.1.10 and more"),
    ("gateway", "<html>gateway</html>"),
    ("primary-ip-address", "10.0.1.300"),
])
def test_a_value_that_cannot_be_parsed_is_invalid_not_unavailable(
        two_enis, tmp_path, all_mode, field, value):
    t = two_enis
    agent = Agent(t, tmp_path)
    doc = build_metadata(t)
    doc["network"]["interfaces"]["macs"][t.eni("eth1").mac][field] = value
    with serve_metadata(t, tmp_path, doc, all=all_mode) as svc:
        res = agent.sync(metadata=svc.url)
        assert res.code == 4, f"{res}\n{svc.show()}"
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("eni-agent: "), res.stderr
        assert svc.url in lines[0] and field in lines[0] and t.eni("eth1").mac in lines[0], lines
        # the bad ENI is left as it is; the valid one beside it is configured
        assert not set(t.eni("eth1").ips) & rule_sources(t)
        assert set(t.eni("eth2").ips) <= rule_sources(t)


def test_urls_use_the_mac_exactly_as_the_service_lists_it(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    doc = build_metadata(t)
    macs = doc["network"]["interfaces"]["macs"]
    doc["network"]["interfaces"]["macs"] = {mac.upper(): fields for mac, fields in macs.items()}
    doc["mac"] = doc["mac"].upper()
    with serve_metadata(t, tmp_path, doc, all="missing") as svc:  # paths are case-sensitive
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.states() == {"eth1": "configured"}
        upper = t.eni("eth1").mac.upper()
        assert {r["status"] for r in svc.requests() if upper in r["path"]} <= {200, 404}
        assert any(r["path"] == f"{MACS}/{upper}/private-ipv4s" and r["status"] == 200
                   for r in svc.requests())
        assert_traffic(t, t.eni("eth1").ips)


def test_an_all_document_that_is_not_json_is_invalid(two_enis, tmp_path):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, all="complete") as svc:
        before = dumps(guest_state(t))
        # a body with a correct Content-Length that is not JSON: not a cut, a bad document
        svc.fault(replace_body={"path": "/meta-data/all", "body": "{mac: 00:16:3e"})
        line = assert_one_error_line(agent.sync(metadata=svc.url), 4)
        assert "meta-data/all" in line and "JSON" in line, line
        assert dumps(guest_state(t)) == before


@pytest.mark.parametrize("portal", [True, "GET"], ids=["every-request", "gets-only"])
def test_a_captive_portal_is_the_service_unavailable(two_enis, tmp_path, portal):
    """200 and an HTML page for every request: exit 5 (the one-shot unit
    retries it), not 4; nothing changed; the service back, the next sync works."""
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, tokens="refused") as svc:
        assert agent.sync(metadata=svc.url).code == 0
        converged = dumps(guest_state(t))
        svc.fault(portal=portal)
        line = assert_one_error_line(agent.sync(metadata=svc.url), 5)
        assert line.startswith("eni-agent: metadata service ") and "web page" in line, line
        assert dumps(guest_state(t)) == converged
        svc.fault()
        assert agent.sync(metadata=svc.url).code == 0


def test_hardened_only_after_a_refused_token_within_one_fetch(two_enis, tmp_path):
    """The first token request is refused (normal mode), then the instance is
    hardened-only: a GET without a token answers 403, and the token is asked
    again at once rather than failing the fetch."""
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, tokens="required") as svc:
        svc.fault(token_status_once=404)
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        seen = [(r["method"], r["status"]) for r in svc.requests()][:4]
        assert seen == [("PUT", 404), ("GET", 403), ("PUT", 200), ("GET", 200)], svc.show()


@pytest.mark.parametrize("all_mode", ["thin", "complete"])
def test_prefixes_delegated_at_the_service_are_routed(topology_factory, tmp_path, all_mode):
    """`ipv4-prefixes` read from the service (the tree under a thin `all`, or
    `all` itself): each prefix gets its rule, and a reply from an address of
    the prefix leaves through its ENI."""
    from tests.harness.kernel import owned_rules
    from tests.harness.prefixes import PREFIX, PREFIX_IP, prefix_topology, with_prefixes
    from tests.harness.prober import outbound_handshake

    t = prefix_topology(topology_factory)
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, with_prefixes(t, [PREFIX]), all=all_mode) as svc:
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert {"10.0.1.32"} == {r["src"] for r in owned_rules(t) if r.get("srclen") == 28}
        assert outbound_handshake(t, PREFIX_IP)
        if all_mode == "thin":
            assert any(r["path"] == f"{MACS}/{t.eni('eth1').mac}/ipv4-prefixes"
                       and r["status"] == 200 for r in svc.requests()), svc.show()
