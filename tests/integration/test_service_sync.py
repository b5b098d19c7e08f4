"""`eni-agent sync --metadata http://100.100.100.200` against the stand-in ECS
metadata service (metadata_server.py with --require-token) running in the
router namespace: the guest reaches it through eth0's default route, as on ECS.

It converges like a metadata file does, with real traffic through each ENI;
every fault of the service (5xx, 429, a hang, a 404 on a required field, a
truncated or huge answer) leaves the kernel untouched and exits 5 with one
line; revoked tokens are renewed transparently; clearing the fault recovers.
"""

from __future__ import annotations

import time

import pytest

from tests.harness.agent import Agent, assert_one_error_line
from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.kernel import dumps, guest_state, rule_sources
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import assert_traffic

HANG_LIMIT = 20.0  # seconds; the client's deadline for one whole fetch is 10 s
# (the bound for a dripping server: `sync` fails within 20 s)
TOKEN_PATH = "/latest/api/token"


def assert_tokens_used(requests: list[dict]) -> None:
    """A PUT for a token came first, and every GET carried a valid token: with
    --require-token the server answers 401 to a GET without one."""
    assert requests, "the server saw no request"
    assert requests[0]["method"] == "PUT" and requests[0]["path"] == TOKEN_PATH, requests[:3]
    assert requests[0]["status"] == 200, requests[0]
    gets = [r for r in requests if r["method"] == "GET"]
    assert gets, requests
    refused = [r for r in gets if r["status"] not in (200, 404)]
    assert refused == [], refused
    assert [r for r in requests if r["method"] not in ("GET", "PUT")] == []


@pytest.fixture
def two_enis(topology_factory):
    return topology_factory([make_eni(1), make_eni(2, n_ips=3)])


def test_sync_from_the_service_converges_with_traffic_and_tokens(two_enis, tmp_path):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, build_metadata(t)) as svc:
        before = guest_state(t)
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, f"{res}\n{svc.show()}"
        assert res.json["result"] == "converged"
        assert res.states() == {"eth1": "configured", "eth2": "configured"}
        assert guest_state(t) != before
        assert_tokens_used(svc.requests())
        fetched = {r["path"] for r in svc.requests() if r["status"] == 200}
        assert "/latest/meta-data/network/interfaces/macs/00:16:3e:00:02:01/private-ipv4s" in fetched

        assert_traffic(t, ["10.0.0.5", *t.eni("eth1").ips, *t.eni("eth2").ips])

        # A second run through the service changes nothing.
        state = guest_state(t)
        again = agent.sync("--json", metadata=svc.url)
        assert again.code == 0, str(again)
        assert again.states() == {"eth1": "in-sync", "eth2": "in-sync"}
        assert dumps(guest_state(t)) == dumps(state)
        via_service = state

    # ...and the same document from a file agrees: the service is just a source.
    agent.write()
    from_file = agent.sync("--json")
    assert from_file.code == 0 and from_file.states() == {"eth1": "in-sync", "eth2": "in-sync"}
    assert dumps(guest_state(t)) == dumps(via_service)


# (control written to the server, what the message must mention)
FAULTS = [
    pytest.param({"status": 500}, "HTTP 500", id="500"),
    pytest.param({"status": 503}, "HTTP 503", id="503"),
    pytest.param({"status": 429}, "HTTP 429", id="429"),
    pytest.param({"hang": True}, "", id="hang"),
    pytest.param({"not_found": "gateway"}, "gateway", id="404-gateway"),
    pytest.param({"not_found": "private-ipv4s"}, "private-ipv4s", id="404-private-ipv4s"),
    pytest.param({"not_found": "primary-ip-address"}, "primary-ip-address",
                 id="404-primary-ip-address"),
    pytest.param({"not_found": ["vswitch-cidr-block", "netmask"]}, "vswitch-cidr-block",
                 id="404-vswitch-cidr-block-and-netmask"),
    pytest.param({"not_found": "meta-data/mac"}, "mac", id="404-mac"),
    pytest.param({"not_found": "network/interfaces/macs/"}, "listing", id="404-listing"),
    pytest.param({"truncate": True}, "", id="truncated"),
    pytest.param({"huge": True}, "exceeds", id="huge"),
    # dripping answers: one deadline for the whole fetch holds against them
    pytest.param({"drip": {"what": "headers", "every": 1.5}}, "deadline", id="drip-headers"),
    pytest.param({"drip": {"what": "body", "every": 1.5}}, "deadline", id="drip-body"),
    # anything that is not a plausible token is an unavailable answer
    pytest.param({"token_body": "<html><body>Service Unavailable</body></html>"}, "web page",
                 id="html-token"),
    pytest.param({"token_body": " \n"}, "not a token", id="blank-token"),
    pytest.param({"token_body": "a" * 300}, "not a token", id="long-token"),
    pytest.param({"token_body": "abc\x01def"}, "not a token", id="control-char-token"),
]


def test_every_fault_changes_nothing_and_exits_5_then_recovers(two_enis, tmp_path):
    """One topology, one server: converge, then each fault in turn against the
    converged guest (and the service down), then recovery."""
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        converged = dumps(guest_state(t))
        timings = {}
        for param in FAULTS:
            control, needle = param.values
            svc.fault(**control)
            start = time.monotonic()
            res = agent.sync(metadata=svc.url)
            timings[param.id] = round(time.monotonic() - start, 2)
            line = assert_one_error_line(res, 5)
            assert "metadata service" in line, line
            assert needle in line, line
            assert dumps(guest_state(t)) == converged, f"{param.id} changed the kernel"
            assert timings[param.id] < HANG_LIMIT, timings
            svc.clear()
        print("fault -> exit 5 after (s):", timings)

        # The service down altogether (connection refused): the same.
        svc.stop()
        line = assert_one_error_line(agent.sync(metadata=svc.url), 5)
        assert "refused" in line.lower(), line
        assert dumps(guest_state(t)) == converged
        svc.start()

        # Recovery: the fault is gone, the next sync is a no-op success.
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, str(res)
        assert res.states() == {"eth1": "in-sync", "eth2": "in-sync"}
        assert dumps(guest_state(t)) == converged


def test_a_hang_ends_within_the_fetch_deadline(two_enis, tmp_path):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        before = dumps(guest_state(t))  # nothing configured yet: a first sync that hangs
        svc.fault(hang=True)
        start = time.monotonic()
        res = agent.sync(metadata=svc.url)
        elapsed = time.monotonic() - start
        print(f"sync against a hanging service exited {res.code} after {elapsed:.2f}s")
        line = assert_one_error_line(res, 5)
        assert "timed out" in line or "deadline" in line, line
        assert elapsed < HANG_LIMIT
        assert dumps(guest_state(t)) == before  # the ENIs stay unconfigured
        svc.clear()
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.states() == {"eth1": "configured", "eth2": "configured"}


@pytest.mark.parametrize("control", [{"status": 500}, {"not_found": "private-ipv4s"},
                                     {"truncate": True}], ids=["500", "404", "truncated"])
def test_a_fault_never_reads_as_no_enis_on_a_drifted_guest(two_enis, tmp_path, control):
    """The amazon-ec2-net-utils #161 failure: a transient error read as "no
    addresses". Here the guest has drifted (a rule deleted by hand); a faulty
    answer must not repair nor remove anything."""
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        ip(t.guest, "rule", "del", "from", "10.0.2.11", "priority", "10000")
        drifted = dumps(guest_state(t))
        svc.fault(**control)
        assert_one_error_line(agent.sync(metadata=svc.url), 5)
        assert dumps(guest_state(t)) == drifted
        svc.clear()
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.eni("eth2")["state"] == "configured", str(res)
        assert any("10.0.2.11" in c for c in res.eni("eth2")["changes"])


def test_revoked_tokens_are_renewed_transparently(two_enis, tmp_path):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        converged = dumps(guest_state(t))
        for n in (1, 2):
            mark = svc.mark()
            svc.fault(expire_tokens=n)
            res = agent.sync("--json", metadata=svc.url)
            assert res.code == 0, f"{res}\n{svc.show()}"
            assert res.states() == {"eth1": "in-sync", "eth2": "in-sync"}
            assert res.stderr == ""
            assert dumps(guest_state(t)) == converged
            seen = svc.requests(mark)
            # token, GET refused (all tokens revoked), a new token, then all fine
            assert [(r["method"], r["status"]) for r in seen[:4]] == [
                ("PUT", 200), ("GET", 401), ("PUT", 200), ("GET", 200)], seen[:4]
            assert_tokens_used(seen[2:])


@pytest.mark.parametrize("field", ["network-interface-id", "ipv4-prefixes",
                                   "vswitch-cidr-block"])
def test_a_404_on_an_optional_field_is_fine(two_enis, tmp_path, field):
    """vswitch-cidr-block is optional where netmask stands in for it (it does here)."""
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        svc.fault(not_found=field)
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, str(res)
        assert res.states() == {"eth1": "configured", "eth2": "configured"}
        assert any(r["status"] == 404 and r["path"].endswith("/" + field)
                   for r in svc.requests())
        assert_traffic(t, [*t.eni("eth1").ips[:1], *t.eni("eth2").ips[:1]])


def test_attach_detach_and_ip_changes_served_by_the_service(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        # attach: listed first, NIC after
        eni2 = make_eni(2)
        svc.set_document(build_metadata(t, enis=[t.eni("eth1"), eni2]))
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.eni(eni2.mac)["state"] == "pending", str(res)
        t.add_eni(eni2)
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0 and res.eni("eth2")["state"] == "configured", str(res)
        assert_traffic(t, t.eni("eth2").ips)

        # an IP assigned, another unassigned on eth1
        t.assign_private_ip("eth1", "10.0.1.12")
        t.unassign_private_ip("eth1", "10.0.1.11")
        svc.set_document(build_metadata(t))
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, str(res)
        changes = res.eni("eth1")["changes"]
        assert any("add address 10.0.1.12/24" in c for c in changes), changes
        assert "remove address 10.0.1.11/24 dev eth1" in changes, changes
        assert_traffic(t, ["10.0.1.10", "10.0.1.12"])

        # detach eth2: gone from the service, and its NIC removed
        svc.set_document(build_metadata(t, enis=[t.eni("eth1")]))
        t.remove_eni("eth2")
        res = agent.sync("--json", metadata=svc.url)
        assert res.code == 0, str(res)
        assert not {"10.0.2.10", "10.0.2.11"} & rule_sources(t)
        assert {"10.0.1.10", "10.0.1.12"} <= rule_sources(t)
        assert "10.0.1.11" not in rule_sources(t)


@pytest.mark.parametrize("all_mode, path", [("missing", "/network/interfaces/macs/"),
                                            ("complete", "/meta-data/all")],
                         ids=["listing", "all"])
def test_a_listing_cut_short_at_a_line_end_changes_nothing(two_enis, tmp_path, all_mode, path):
    t = two_enis
    agent = Agent(t, tmp_path)
    with serve_metadata(t, tmp_path, partial_bodies=True, all=all_mode) as svc:
        assert agent.sync(metadata=svc.url).code == 0
        converged = dumps(guest_state(t))
        # the listing (primary, eth1, eth2) stops after eth1's line; `all` (one
        # line per field) stops in eth1's entry
        svc.fault(cut_lines={"path": path, "keep": 2 if all_mode == "missing" else 12})
        res = agent.sync("--json", metadata=svc.url)
        assert dumps(guest_state(t)) == converged, str(res)
        assert_one_error_line(res, 5)
        assert any(r["path"].endswith(path) for r in svc.requests()), svc.show()
