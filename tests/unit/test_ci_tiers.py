"""CI cannot pass hollow (.ci/tier.py, which .ci/run runs): each tier's counts
come from pytest's JUnit report, a tier fails below its minimum of collected
tests, and arguments say what they leave out. Pure functions, plus small runs
of the script on a scratch test file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.harness.commands import REPO

spec = importlib.util.spec_from_file_location("ci_tier", REPO / ".ci" / "tier.py")
tier = sys.modules["ci_tier"] = importlib.util.module_from_spec(spec)  # (dataclasses look it up)
spec.loader.exec_module(tier)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.unit.test_a" name="test_ok2" time="0.1"/>
<testcase classname="tests.unit.test_a" name="test_skip"><skipped message="no root"/></testcase>
<testcase classname="tests.unit.test_a" name="test_bad"><failure message="assert 1 == 2"/></testcase>
<testcase classname="" name="tests.integration.test_b"><error message="collection failure"/>
</testcase></testsuite></testsuites>"""


def test_counts_from_a_junit_report():
    assert tier.count_junit(JUNIT) == tier.Counts(collected=5, passed=2, failed=2, skipped=1)


def test_the_summary_is_one_line_with_every_count():
    line = tier.summary_line("unit", tier.Counts(863, 860, 0, 3), 37.44, 800)
    assert line == ("== tier unit: collected 863, passed 860, failed 0, skipped 3 in 37.4 s "
                    "(minimum 800)")


@pytest.mark.parametrize("status, counts, minimum, code, why", [
    (0, tier.Counts(863, 863, 0, 0), 800, 0, None),
    (0, tier.Counts(799, 799, 0, 0), 800, 1, "collected 799, fewer than its minimum 800"),
    (0, tier.Counts(0, 0, 0, 0), None, 5, "no test collected"),
    (0, tier.Counts(3, 3, 0, 0), None, 0, None),  # arguments given: no minimum
    (1, tier.Counts(900, 899, 1, 0), 800, 1, "exit status 1"),
    (2, tier.Counts(1, 0, 1, 0), 800, 2, "exit status 2"),  # a collection error
])
def test_verdict(status, counts, minimum, code, why):
    got_code, got_why = tier.verdict(status, counts, minimum)
    assert got_code == code
    assert (got_why is None) if why is None else got_why.startswith(why)


@pytest.mark.parametrize("args, runs, left_out", [
    ([], ["unit", "integration", "vm", "py39", "packaging"], []),
    (["vm", "unit"], ["unit", "vm"], ["integration", "py39", "packaging"]),
    (["tests/unit", "-k", "watch"], ["pytest"],
     ["py39", "packaging", "the minimums of unit, integration, vm"]),
])
def test_what_a_run_runs_and_leaves_out(args, runs, left_out):
    planned, out = tier.plan(args)
    assert [name for name, _ in planned] == runs
    assert [o.split(" (")[0] for o in out] == left_out


def test_an_opted_out_tier_is_said():
    assert tier.opted_out("vm", {"ENI_AGENT_VM_TESTS": "0"}) == "ENI_AGENT_VM_TESTS=0"
    assert tier.opted_out("vm", {"ENI_AGENT_VM_TESTS": "1"}) is None
    assert tier.opted_out("unit", {"ENI_AGENT_VM_TESTS": "0"}) is None


def test_every_tier_has_a_minimum():
    assert set(tier.MINIMUMS) == set(tier.TIERS)


def run_tier_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / ".ci" / "tier.py"), "run", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_a_run_with_arguments_prints_what_it_leaves_out_and_its_summary():
    cp = run_tier_script("tests/unit/test_ci_tiers.py", "-k", "counts_from")
    assert cp.returncode == 0, cp
    lines = cp.stdout.splitlines()
    assert lines[0].startswith("== .ci/run tests/unit/test_ci_tiers.py -k counts_from: leaves "
                               "out py39, packaging, the minimums of unit"), lines[0]
    assert lines[-1].startswith("== tier pytest: collected 1, passed 1, failed 0, skipped 0 in ")


def test_a_failing_selection_fails_the_run():
    cp = run_tier_script("tests/unit/test_ci_tiers.py", "-k", "no_such_test_anywhere")
    assert cp.returncode == 5, cp  # pytest's "no tests collected"
    assert "== tier pytest FAILED: exit status 5" in cp.stderr
