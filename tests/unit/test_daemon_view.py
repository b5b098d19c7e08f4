"""The daemon's view: what a pass, a metadata read and lost notifications do
to it, its STATUS= line, and `status` reading it back. Times are literal."""

from __future__ import annotations

import json

from eni_agent.daemon_view import DaemonView, read_live, status_line, view_exit_code, view_json, \
    view_text
from eni_agent.errors import InvalidInput, MetadataUnavailable
from eni_agent.report import EniReport, EniState, Report

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def report(*enis: EniReport, converged: bool = True, other: tuple[str, ...] = ()) -> Report:
    r = Report("sync")
    r.enis = list(enis)
    r.converged = converged
    r.other_changes = list(other)
    return r


def eni(state=EniState.IN_SYNC, changes=(), mac="00:16:3e:00:01:01", eni_id="eni-one",
        link="eth1", reason="") -> EniReport:
    e = EniReport(mac, eni_id, state, reason=reason, link=link, ifindex=3 if link else None,
                  table=10003 if link else None, addresses=["10.0.1.10/24"])
    e.changes = list(changes)
    return e


def view() -> DaemonView:
    return DaemonView(pid=42, started_at=T0, source="http://100.100.100.200", netns=7)


def test_a_pass_counts_changes_by_kind_and_a_repair():
    v = view()
    v.pass_done(report(eni(EniState.CONFIGURED, ["add address 10.0.1.10/24 dev eth1",
                                                 "add rule 10000: from 10.0.1.10 lookup 10003",
                                                 "add route x: FAILED EEXIST"])),
                {"start"}, 0.004, repair=False, now=T0 + 1)
    v.pass_done(report(eni(EniState.CONFIGURED, ["add rule 10000: from 10.0.1.10 lookup 10003"])),
                {"rule event"}, 0.002, repair=True, now=T0 + 5)
    doc = v.document(T0 + 6)
    assert doc["counters"] == {"passes": 2, "repairs": 1, "notifications_lost": 0,
                               "fetch_failures": {},
                               "changes": {"add_address": 1, "add_rule": 2}}
    (one,) = doc["enis"]
    # configured and verified: in sync, as `status` computing its own view says
    assert (one["state"], one["last_change_at"], one["state_since"]) == ("in-sync", T0 + 5,
                                                                         T0 + 1)
    assert one["last_change"] == "add rule 10000: from 10.0.1.10 lookup 10003"
    assert one["followed_addresses"] == []
    assert doc["last_pass"] == {"at": T0 + 5, "duration_seconds": 0.002,
                                "triggers": ["rule event"], "converged": True}


def test_a_state_keeps_its_since_until_it_changes():
    v = view()
    v.pass_done(report(eni(EniState.PENDING, link=None, reason="no link with this MAC yet")),
                {"start"}, 0.001, False, T0)
    v.pass_done(report(eni(EniState.PENDING, link=None, reason="no link with this MAC yet")),
                {"link event"}, 0.001, False, T0 + 3)
    assert v.document(T0 + 4)["enis"][0]["state_since"] == T0
    v.pass_done(report(eni(EniState.CONFIGURED, ["set link eth1 up"])), {"link event"}, 0.001,
                False, T0 + 9)
    v.pass_done(report(eni(EniState.IN_SYNC)), {"periodic resync"}, 0.001, False, T0 + 40)
    assert v.document(T0 + 41)["enis"][0]["state_since"] == T0 + 9  # configured = in sync


def test_fetch_failures_by_kind_and_the_last_success():
    v = view()
    v.fetch_done(None, T0, next_at=T0 + 12, duration=0.03)
    v.fetch_done(MetadataUnavailable("metadata service: timed out"), T0 + 12, T0 + 13)
    v.fetch_done(InvalidInput("invalid metadata: ..."), T0 + 13, T0 + 14)
    v.fetch_done(MetadataUnavailable("abandoned"), T0 + 30, T0 + 30, kind="timeout")
    doc = v.document(T0 + 31)
    assert doc["counters"]["fetch_failures"] == {"unavailable": 1, "invalid": 1, "timeout": 1}
    assert doc["metadata"]["last_success_at"] == T0
    assert doc["metadata"]["last_fetch"]["outcome"] == "failed"
    assert doc["metadata"]["next_fetch_at"] == T0 + 30


def test_status_line_says_where_the_daemon_stands():
    v = view()
    v.fetch_done(None, T0, T0 + 12)
    v.pass_done(report(eni(EniState.IN_SYNC), eni(EniState.CONFIGURED, mac="00:16:3e:00:02:01"),
                       eni(EniState.PENDING, mac="00:16:3e:00:03:01", link=None,
                           reason="no link with this MAC yet")), {"start"}, 0.01, False, T0 + 1)
    assert v.status_line(T0 + 2) == ("converged: 2 in sync, 1 pending (no NIC yet); "
                                     "metadata read 08:00:00 UTC (pid 42)")
    v.fetch_done(MetadataUnavailable("down"), T0 + 15, T0 + 16)
    v.pass_done(report(eni(EniState.FAILED), converged=False), {"rule event"}, 0.01, True, T0 + 16)
    line = v.status_line(T0 + 17)
    assert line == ("NOT converged: 1 failed; metadata read FAILED 08:00:15 UTC (unavailable), "
                    "last read 08:00:00 UTC (pid 42)")
    assert "\n" not in line and len(line) < 200


def test_status_line_is_one_bounded_line_whatever_the_reasons():
    v = view()
    many = [eni(EniState.PENDING, mac=f"00:16:3e:00:{i:02x}:01", link=None, reason="x" * 300)
            for i in range(40)]
    v.pass_done(report(*many), {"start"}, 0.01, False, T0)
    line = status_line(v.document(T0), T0)
    assert len(line) < 200 and line.endswith("(pid 42)")


def test_status_reads_back_only_a_live_daemon_of_this_namespace(tmp_path):
    v = view()
    v.pass_done(report(eni()), {"start"}, 0.001, False, T0)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(v.document(T0)))
    assert read_live(path, alive=lambda pid: pid == 42, netns=7)["pid"] == 42
    assert read_live(path, alive=lambda pid: False, netns=7) is None  # its writer is gone
    assert read_live(path, alive=lambda pid: True, netns=8) is None  # another namespace's
    path.write_text("{not json")
    assert read_live(path, alive=lambda pid: True) is None
    assert read_live(tmp_path / "absent", alive=lambda pid: True) is None


def test_status_shows_the_view_with_its_age_and_exit_code():
    v = view()
    v.fetch_done(None, T0, T0 + 12)
    v.pass_done(report(eni(EniState.CONFIGURED, ["add address 10.0.1.10/24 dev eth1"])),
                {"start"}, 0.0021, False, T0 + 1)
    doc = v.document(T0 + 1)
    text = view_text(doc, T0 + 4)
    assert text.splitlines()[0].startswith("the running daemon's view (pid 42, written 3 s ago")
    assert "eni-one 00:16:3e:00:01:01 eth1 table 10003: in-sync since 08:00:01 UTC" in text
    assert "  last change 08:00:01 UTC: add address 10.0.1.10/24 dev eth1" in text
    shown = json.loads(view_json(doc, T0 + 4))
    assert (shown["view"], shown["age_seconds"], shown["exit_code"]) == ("daemon", 3.0, 0)
    assert view_exit_code({**doc, "last_pass": {**doc["last_pass"], "converged": False}}) == 3
    assert view_exit_code({**doc, "enis": [{**doc["enis"][0], "state": "invalid"}]}) == 4


def test_the_view_carries_followed_addresses_and_warnings_as_status_computes_them():
    """`status` while the daemon runs shows its view: what a computed status
    shows of followed addresses (a VIP) and warnings (another agent on the
    image naming the ENI) must be in it too."""
    v = view()
    one = eni(EniState.IN_SYNC)
    one.followed = ["10.0.1.100"]
    one.warnings = ["cloud-init's network config names eth1 (00:16:3e:00:01:01) in /etc/x"]
    r = report(one)
    r.warnings = ["nm-cloud-setup runs with its Aliyun provider"]
    v.pass_done(r, {"start"}, 0.001, repair=False, now=T0)
    doc = v.document(T0 + 1)
    (e,) = doc["enis"]
    assert e["followed_addresses"] == ["10.0.1.100"]
    assert e["warnings"] == one.warnings and doc["warnings"] == r.warnings
    text = view_text(doc, T0 + 2).splitlines()
    assert "  followed: 10.0.1.100" in text
    assert f"  warning: {one.warnings[0]}" in text
    assert "warning: nm-cloud-setup runs with its Aliyun provider" in text
