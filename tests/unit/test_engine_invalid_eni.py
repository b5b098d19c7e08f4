"""One ENI whose own metadata fields are invalid is isolated: reported as
`invalid` (text, JSON, one stderr line each), its NIC left exactly as it is,
every valid ENI configured, and `sync` exits 4.

`Metadata.invalid` comes from the model; these tests build a Metadata-like
value carrying it, so they hold whichever way the model produces it.
"""

from __future__ import annotations

import json
import sys
from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace
from typing import NamedTuple, Optional

import pytest

from eni_agent import commands
from eni_agent.engine import preview, reconcile
from eni_agent.errors import ExitCode
from eni_agent.main import main
from eni_agent.report import EniState, report_json, report_text
from eni_agent.state import Address, Observed, Route, Rule

from tests.harness.documents import SECOND_MAC, THIRD_MAC, example_metadata, write_file
from tests.harness.fake_netlink import FakeNetlink, fail_rule_adds
from tests.harness.observed import (CONFIG, ETH0, ETH1, ETH1_ALTNAME, ETH1_DOWN, ETH2,
                                    config_with, eth1_state)

MESSAGE = (f"invalid metadata m.json: ENI eni-third ({THIRD_MAC}): gateway: 10.0.9.1 is outside "
           "vswitch-cidr-block 10.0.2.0/24")


class InvalidEni(NamedTuple):  # the model's shape: .mac, .eni_id or None, .message
    mac: str
    eni_id: Optional[str]
    message: str


def with_invalid(*invalid: InvalidEni):
    """The example's metadata (one valid secondary ENI on eth1) plus `invalid`."""
    metadata = example_metadata()
    return SimpleNamespace(primary_mac=metadata.primary_mac, enis=metadata.enis,
                           secondary_enis=metadata.secondary_enis, invalid=invalid)


THIRD = InvalidEni(THIRD_MAC, "eni-third", MESSAGE)
# What an earlier sync configured on eth2 (ifindex 4, table 10004), before
# the ENI's metadata went bad.
ETH2_STATE = (frozenset({Address(4, IPv4Address("10.0.2.10"), 24)}),
              frozenset({Route(10004, IPv4Network("10.0.2.0/24"), 4),
                         Route(10004, IPv4Network("0.0.0.0/0"), 4, IPv4Address("10.0.2.253"))}),
              frozenset({Rule(10000, IPv4Address("10.0.2.10"), 10004)}))


def configured_eth2(links=(ETH0, ETH1_DOWN, ETH2)) -> Observed:
    addresses, routes, rules = ETH2_STATE
    return Observed(links=links, addresses=addresses, routes=routes, rules=rules)


def test_valid_enis_are_configured_and_the_invalid_one_is_left_as_it_is():
    nl = FakeNetlink(configured_eth2())
    report = reconcile(nl, with_invalid(THIRD), CONFIG)

    assert [(e.mac, e.state, e.link) for e in report.enis] == [
        (SECOND_MAC, EniState.CONFIGURED, "eth1"), (THIRD_MAC, EniState.INVALID, "eth2")]
    invalid = report.enis[1]
    assert (invalid.eni_id, invalid.errors, invalid.changes, invalid.table) == \
        ("eni-third", [MESSAGE], [], None)
    assert report.converged and report.other_changes == []
    assert report.exit_code == ExitCode.INVALID_INPUT == 4
    # eth2 kept exactly what it had; eth1 got its configuration.
    addresses, routes, rules = eth1_state()
    assert nl.state.addresses == addresses | ETH2_STATE[0]
    assert nl.state.routes == routes | ETH2_STATE[1]
    assert nl.state.rules == rules | ETH2_STATE[2]


def test_an_invalid_eni_is_never_configured():
    nl = FakeNetlink(Observed(links=(ETH0, ETH1, ETH2)))
    report = reconcile(nl, with_invalid(THIRD), CONFIG)
    assert not any(c.ifindex == ETH2.index or getattr(c.target, "table", 0) == 10004
                   for batch in nl.applied for c in batch)
    assert report.exit_code == 4


def test_an_invalid_eni_without_its_nic_is_still_reported():
    report = reconcile(FakeNetlink(Observed(links=(ETH0, ETH1))), with_invalid(THIRD), CONFIG)
    (invalid,) = report.invalid
    assert (invalid.mac, invalid.link, invalid.ifindex) == (THIRD_MAC, None, None)


def test_a_failed_change_outranks_an_invalid_eni():
    """4 says "only the named invalid ENIs were left"; with a failure that is not so."""
    report = reconcile(FakeNetlink(configured_eth2((ETH0, ETH1, ETH2)), fail=fail_rule_adds),
                       with_invalid(THIRD), CONFIG)
    assert report.exit_code == ExitCode.NOT_CONVERGED


@pytest.mark.parametrize("setting", [{"ignore_macs": [THIRD_MAC]},
                                     {"ignore_interfaces": ["eth2"]}])
def test_an_invalid_eni_the_config_ignores_is_ignored(setting):
    report = reconcile(FakeNetlink(Observed(links=(ETH0, ETH1, ETH2))), with_invalid(THIRD),
                       config_with(**setting))
    assert [e.state for e in report.enis] == [EniState.CONFIGURED, EniState.IGNORED]
    assert report.enis[1].errors == [] and report.exit_code == 0


@pytest.mark.parametrize("command, state", [("status", "out-of-sync"), ("sync", "would-change")])
def test_status_and_dry_run_show_the_invalid_eni_and_change_nothing(command, state):
    nl = FakeNetlink(configured_eth2())
    report = preview(nl, with_invalid(THIRD), CONFIG, command=command)
    assert nl.applied == []
    assert [e.state for e in report.enis] == [state, "invalid"]
    assert report.enis[1].changes == [] and report.other_changes == []


def test_status_in_sync_but_for_an_invalid_eni_exits_4():
    addresses, routes, rules = (a | b for a, b in zip(eth1_state(), ETH2_STATE))
    nl = FakeNetlink(Observed(links=(ETH0, ETH1, ETH2), addresses=addresses, routes=routes,
                              rules=rules, altnames=frozenset({ETH1_ALTNAME})))
    report = preview(nl, with_invalid(THIRD), CONFIG)
    assert [e.state for e in report.enis] == ["in-sync", "invalid"]
    assert report.exit_code == 4


def test_the_reports_say_invalid():
    report = reconcile(FakeNetlink(configured_eth2()), with_invalid(THIRD), CONFIG)
    doc = json.loads(report_json(report))
    assert doc["exit_code"] == 4
    assert doc["enis"][1] == {
        "mac": THIRD_MAC, "eni_id": "eni-third", "state": "invalid", "reason": "",
        "link": "eth2", "ifindex": 4, "table": None, "addresses": [], "prefixes": [],
        "followed": [], "changes": [], "errors": [MESSAGE], "warnings": [], "mtu": None,
        "queues": None}
    lines = report_text(report).splitlines()
    assert f"eni-third {THIRD_MAC} eth2: invalid" in lines
    assert f"  error: {MESSAGE}" in lines
    assert lines[-1] == "sync: converged: 1 configured, 1 invalid"


def test_without_invalid_enis_nothing_changes():
    """A Metadata without the attribute (before the model adds it), or with none."""
    for metadata in (example_metadata(), with_invalid()):
        report = reconcile(FakeNetlink(Observed(links=(ETH0, ETH1))), metadata, CONFIG)
        assert report.exit_code == 0 and report.invalid == []


# -- the commands: one stderr line per invalid ENI, exit 4 ---------------------------------

@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(*args) -> (exit code, stdout, stderr) of `eni-agent ARGS`, with the
    metadata and the kernel faked."""
    from eni_agent import sources

    monkeypatch.delenv("ENI_AGENT_DEBUG", raising=False)
    # keep_managers_off = false: `sync` here runs in the host's namespace, and a
    # unit test never writes the host's network-manager files
    config = str(write_file(tmp_path / "config.toml", "keep_managers_off = false\n"))
    nl = FakeNetlink(configured_eth2())
    second = THIRD._replace(mac="00:16:3e:00:03:01", eni_id=None, message="second message")
    monkeypatch.setattr(sources, "load_metadata", lambda source: with_invalid(THIRD, second))
    monkeypatch.setattr(commands, "_netlink", lambda config: _Held(nl))
    monkeypatch.setattr(commands, "_writer_lock", lambda: _Held(None))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["eni-agent", *args, "--config", config])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        return info.value.code, out, err

    run.nl = nl
    return run


class _Held:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


STDERR = f"eni-agent: {MESSAGE}\neni-agent: second message\n"


@pytest.mark.parametrize("args, exit_code", [
    (["sync"], 4), (["sync", "--json"], 4), (["sync", "--dry-run"], 4),
    (["status"], 3), (["status", "--json"], 3),  # eth1 is not configured yet: not in sync
])
def test_sync_and_status_print_one_line_per_invalid_eni(run, args, exit_code):
    code, out, err = run(*args)
    assert (code, err) == (exit_code, STDERR)
    assert out.count("invalid") >= 2


def test_sync_configures_the_valid_eni_before_exiting_4(run):
    code, out, _ = run("sync")
    assert code == 4
    assert out.splitlines()[-1] == "sync: converged: 1 configured, 2 invalid"
    assert eth1_state()[0] <= run.nl.state.addresses


def test_validate_names_each_invalid_eni_and_exits_4(run):
    code, out, err = run("validate")
    assert (code, err) == (4, STDERR)
    assert "1 secondary ENI(s)" in out


def test_validate_text_and_json_list_the_invalid_enis(run):
    code, out, _ = run("validate")
    lines = out.splitlines()
    assert code == 4 and "valid except 2 invalid ENI(s)" in lines[0]
    assert f"  eni-third ({THIRD_MAC}): invalid" in lines and "  00:16:3e:00:03:01: invalid" in lines
    code, out, _ = run("validate", "--json")
    doc = json.loads(out)
    assert code == 4 and doc["valid"] is False
    assert doc["invalid_enis"][0] == {"mac": THIRD_MAC, "eni_id": "eni-third", "error": MESSAGE}
