"""What `status`, `sync` and `validate` say about delegated prefixes,
main_table_first's host-wide rule, ENIs manage_only leaves out, and Terway."""

from __future__ import annotations

import json

from eni_agent.engine import preview, reconcile
from eni_agent.report import metadata_json, metadata_text, report_json, report_text
from eni_agent.state import Observed

from tests.harness.documents import SECOND_MAC, eni_fields, example_metadata, make_doc, parse
from tests.harness.fake_netlink import FakeNetlink
from tests.harness.observed import CONFIG, ETH0, ETH1, config_with, converged_observed

PREFIXED = {"ipv4-prefixes": ["10.0.1.32/28"], "vswitch-ipv6-cidr-block": "2001:db8:1::/64",
            "ipv6-gateway": "fe80::1", "ipv6-prefixes": "[2001:db8:1:0:1::/80]",
            "network-interface-id": "eni-second"}


def prefixed():
    return parse(make_doc({SECOND_MAC: eni_fields(["10.0.1.10"], "10.0.1.0/24", "10.0.1.253",
                                                  **PREFIXED)}))


def test_status_shows_each_enis_prefixes_in_text_and_json():
    report = preview(FakeNetlink(Observed(links=(ETH0, ETH1))), prefixed(), CONFIG)
    assert "  prefixes: 10.0.1.32/28, 2001:db8:1:0:1::/80" in report_text(report).splitlines()
    (eni,) = json.loads(report_json(report))["enis"]
    assert eni["prefixes"] == ["10.0.1.32/28", "2001:db8:1:0:1::/80"]


def test_an_eni_without_prefixes_shows_none():
    report = preview(FakeNetlink(Observed(links=(ETH0, ETH1))), example_metadata(), CONFIG)
    assert "prefixes" not in report_text(report)
    assert json.loads(report_json(report))["enis"][0]["prefixes"] == []


def test_validate_shows_prefixes():
    text = metadata_text(prefixed(), "m.json")
    assert "prefixes: 10.0.1.32/28, 2001:db8:1:0:1::/80" in text
    doc = json.loads(metadata_json(prefixed(), "m.json"))
    assert [e["prefixes"] for e in doc["enis"]] == [[], ["10.0.1.32/28", "2001:db8:1:0:1::/80"]]


def test_main_table_first_rule_is_a_host_wide_change():
    config = config_with(main_table_first=True)
    nl = FakeNetlink(converged_observed())
    status = preview(nl, example_metadata(), config)
    assert not status.converged
    assert status.host_changes == [
        "add rule 9999: from all lookup main suppress_prefixlength 0"]
    assert status.other_changes == [] and status.enis[0].changes == [
        f"add rule 9998: from 10.0.1.{n} lookup 10003 suppress_prefixlength 0" for n in (10, 11)]
    assert ("host-wide:\n  needs: add rule 9999: from all lookup main suppress_prefixlength 0"
            in report_text(status))

    report = reconcile(nl, example_metadata(), config)
    assert report.converged and json.loads(report_json(report))["host_changes"] == [
        "add rule 9999: from all lookup main suppress_prefixlength 0"]
    assert preview(nl, example_metadata(), config).converged


def test_terway_warning_in_status():
    observed = Observed(links=(ETH0, ETH1), foreign_rule_priorities=frozenset({0, 512, 2048}))
    report = preview(FakeNetlink(observed), example_metadata(), CONFIG)
    (warning,) = json.loads(report_json(report))["warnings"]
    assert "manage_only" in warning
    assert f"warning: {warning}" in report_text(report).splitlines()
    named = preview(FakeNetlink(observed), example_metadata(),
                    config_with(manage_only=["eni-bp1second"]))
    assert named.warnings == []


def test_an_invalid_eni_not_named_in_manage_only_is_ignored_not_invalid():
    doc = make_doc({SECOND_MAC: eni_fields("10.0.1.10", "10.0.1.0/24", "10.9.9.9")})
    report = reconcile(FakeNetlink(converged_observed()), parse(doc),
                       config_with(manage_only=["eni-other"]))
    (eni,) = report.enis
    assert (str(eni.state), eni.reason, eni.errors) == ("ignored", "not named in manage_only", [])
    assert report.exit_code == 0
