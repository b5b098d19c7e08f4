"""Bad input never changes the kernel: not on a fresh guest, and (the case that
matters: a torn or broken document must not read as "no ENIs") not on a
guest the agent already configured. Each refusal is the documented exit code
and exactly one `eni-agent: ` line on stderr. A document whose only fault is
one ENI's own fields is not refused as a whole (issue 12 §4): that ENI is
reported on stdout as `invalid` and left as it is, still exit 4 and one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from tests.harness.agent import Agent, assert_one_error_line, write_config
from tests.harness.kernel import dumps, guest_state
from tests.harness.metadata import build_metadata, write_metadata

ETH1 = "00:16:3e:00:01:01"
INVALID, UNAVAILABLE, PERMISSION = 4, 5, 6


def _text(text: str | None) -> Callable[[dict, Path], tuple[Path, list[str]]]:
    """A metadata file with exactly this content (0600); None: the first half
    of the good document (a torn write)."""
    def prepare(good: dict, workdir: Path) -> tuple[Path, list[str]]:
        path = workdir / "bad.json"
        full = json.dumps(good, indent=2)
        path.write_text(full[: len(full) // 2] if text is None else text)
        path.chmod(0o600)
        return path, []
    return prepare


def _doc(edit: Callable[[dict], Any]) -> Callable[[dict, Path], tuple[Path, list[str]]]:
    """The good document with ``edit(doc)`` applied, written like any other (0600)."""
    def prepare(good: dict, workdir: Path) -> tuple[Path, list[str]]:
        doc = json.loads(json.dumps(good))
        edit(doc)
        return write_metadata(doc, workdir / "bad.json"), []
    return prepare


def _eth1(doc: dict) -> dict:
    return doc["network"]["interfaces"]["macs"][ETH1]


def _set(**fields: Any) -> Callable[[dict], None]:
    return lambda doc: _eth1(doc).update({k.replace("_", "-"): v for k, v in fields.items()})


def _rekey(old: str, new: str) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        macs = doc["network"]["interfaces"]["macs"]
        macs[new] = macs.pop(old)
    return edit


def _same_ip_on_two_enis(doc: dict) -> None:
    doc["network"]["interfaces"]["macs"]["00:16:3e:00:02:01"] = {
        "network-interface-id": "eni-third", "primary-ip-address": "10.0.1.20",
        "private-ipv4s": ["10.0.1.20", "10.0.1.11"], "netmask": "255.255.255.0",
        "gateway": "10.0.1.253", "vswitch-cidr-block": "10.0.1.0/24"}


def _missing(good: dict, workdir: Path) -> tuple[Path, list[str]]:
    return workdir / "does-not-exist.json", []


def _loose_metadata(good: dict, workdir: Path) -> tuple[Path, list[str]]:
    path = write_metadata(good, workdir / "loose.json")
    path.chmod(0o666)
    return path, []


def _config(text: str, mode: int = 0o600) -> Callable[[dict, Path], tuple[Path, list[str]]]:
    def prepare(good: dict, workdir: Path) -> tuple[Path, list[str]]:
        cfg = write_config(workdir / "config.toml", text, mode)
        return write_metadata(good, workdir / "good.json"), ["--config", cfg]
    return prepare


def _flags(*args: str) -> Callable[[dict, Path], tuple[Path, list[str]]]:
    def prepare(good: dict, workdir: Path) -> tuple[Path, list[str]]:
        return write_metadata(good, workdir / "good.json"), list(args)
    return prepare


@dataclasses.dataclass
class Case:
    id: str
    prepare: Callable[[dict, Path], tuple[Path, list[str]]]
    code: int
    message: str  # must appear in the stderr line
    isolated: bool = False  # one ENI's own fields: the report is on stdout too


CASES = [
    Case("malformed-json", _text('{"mac": "00:16:3e:00:00:01",, "network": {}}'), INVALID,
         "not valid JSON"),
    Case("truncated-document", _text(None), INVALID, "not valid JSON"),
    Case("empty-file", _text(""), INVALID, "not valid JSON"),
    Case("not-an-object", _text('["00:16:3e:00:01:01"]'), INVALID, "must be a JSON object"),
    Case("invalid-mac", _doc(_rekey(ETH1, "00:16:3e:00:01:zz")), INVALID,
         "key is not a MAC address"),
    Case("invalid-ip", _doc(_set(private_ipv4s=["10.0.1.10", "10.0.1.300"])), INVALID,
         "private-ipv4s[1]: not an IPv4 address", isolated=True),
    Case("ip-outside-vswitch", _doc(_set(private_ipv4s=["10.0.1.10", "10.0.9.11"])), INVALID,
         "10.0.9.11 is outside vswitch-cidr-block 10.0.1.0/24", isolated=True),
    Case("gateway-outside-vswitch", _doc(_set(gateway="10.0.2.253")), INVALID,
         "gateway: 10.0.2.253 is outside vswitch-cidr-block 10.0.1.0/24", isolated=True),
    Case("same-ip-on-two-enis", _doc(_same_ip_on_two_enis), INVALID,
         "10.0.1.11 is also listed on ENI 00:16:3e:00:01:01"),
    Case("eni-without-ip", _doc(_set(primary_ip_address="", private_ipv4s=[])), INVALID,
         "no IP address", isolated=True),
    Case("missing-file", _missing, UNAVAILABLE, "file not found"),
    Case("metadata-mode-0666", _loose_metadata, PERMISSION, "writable by group or others"),
    Case("config-unknown-key", _config("tabel_base = 20000\n"), INVALID,
         "tabel_base: unknown setting"),
    Case("config-mode-0666", _config("table_base = 20000\n", 0o666), PERMISSION,
         "writable by group or others"),
    Case("protocol-already-named", _flags("--protocol", "4"), INVALID,
         "already a named routing protocol"),
]


def _refusal_problems(agent: Agent, argv: list[Any], case: Case) -> list[str]:
    """Run one refused command; what went wrong (empty if it was refused as
    documented and the kernel did not change)."""
    before = dumps(guest_state(agent.topo))
    problems = []
    try:
        res = agent.run(*argv)
        if case.isolated:
            lines = res.stderr.splitlines()
            assert res.code == case.code and len(lines) == 1, str(res)
            line = lines[0]
            assert line.startswith("eni-agent: ") and ETH1 in line, str(res)
            assert "invalid" in res.stdout, str(res)
        else:
            line = assert_one_error_line(res, case.code)
        assert case.message in line, f"{case.message!r} not in {line!r}"
    except AssertionError as exc:
        problems.append(f"[{case.id}] {exc}")
    if dumps(guest_state(agent.topo)) != before:
        problems.append(f"[{case.id}] kernel state changed by: eni-agent {argv}")
    return problems


def _prepared(case: Case, good: dict, tmp_path: Path) -> tuple[Path, list[str]]:
    workdir = tmp_path / case.id
    workdir.mkdir(mode=0o700)
    return case.prepare(good, workdir)


# One topology for all cases (each case still compares the kernel before and
# after its own run): an agent start costs ~0.5 s, a topology per case would
# double the time of this file.

def test_bad_input_on_a_fresh_guest_is_refused_and_adds_nothing(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    good = build_metadata(t)
    problems = []
    for case in CASES:
        path, extra = _prepared(case, good, tmp_path)
        problems += _refusal_problems(agent, ["sync", "--metadata", path, *extra], case)
    assert not problems, "\n".join(problems)


def test_bad_input_on_a_configured_guest_is_refused_and_removes_nothing(
        topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    agent.converge()
    converged = dumps(guest_state(t))
    good = build_metadata(t)
    problems = []
    for case in CASES:
        path, extra = _prepared(case, good, tmp_path)
        problems += _refusal_problems(agent, ["sync", "--json", "--metadata", path, *extra], case)
        if extra:  # a bad config or flag refuses cleanup too
            problems += _refusal_problems(agent, ["cleanup", *extra], case)
        if dumps(guest_state(t)) != converged:  # keep testing on a configured guest
            agent.converge()
    assert not problems, "\n".join(problems)
    assert dumps(guest_state(t)) == converged


def test_validate_accepts_a_good_document_and_refuses_a_bad_one(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    fresh = dumps(guest_state(t))

    res = agent.validate()
    assert res.code == 0, str(res)
    assert res.stdout.splitlines()[1].strip() == \
        "eni-second (00:16:3e:00:01:01): 10.0.1.10, 10.0.1.11 in 10.0.1.0/24 via 10.0.1.253"
    case = next(c for c in CASES if c.id == "ip-outside-vswitch")
    path, _ = _prepared(case, build_metadata(t), tmp_path)
    assert not _refusal_problems(agent, ["validate", "--metadata", path], case)
    assert dumps(guest_state(t)) == fresh


def test_bad_command_line_is_one_error_line_and_exit_2(topology_with_eni, tmp_path):
    t = topology_with_eni
    agent = Agent(t, tmp_path)
    agent.write()
    fresh = dumps(guest_state(t))

    res = agent.sync("--protocol", "abc")

    assert dumps(guest_state(t)) == fresh
    assert res.code == 2, str(res)
    assert_one_error_line(res, 2)
