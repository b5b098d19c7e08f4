#!/usr/bin/env python3
"""The CI tiers, each run on its own, each ending in one summary line:

    == tier unit: collected 863, passed 863, failed 0, skipped 0 in 37.4 s (minimum 800)

A tier fails when its tests fail, and also when it collected fewer tests than
its minimum (MINIMUMS, the one place they are declared): a tier that quietly
lost a directory, a module-level skip or an import error does not pass
hollow. Skips are failures where a tier is required (tests/conftest.py).

    tier.py run [TIER...]        the tiers named (all when none), in order,
                                 stopping at the first that fails
    tier.py run PYTEST-ARGS...   one pytest run of those arguments (no
                                 minimum), saying which tiers it leaves out
    tier.py plan ARGS...         what `run ARGS` would run and leave out

.ci/run calls `run` after installing what the tests need; the Makefile's
test-TIER targets call .ci/run TIER. Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "vm", "py39", "packaging")
# Collected tests (`pytest --collect-only -q`) on 2026-12-05, rounded down a
# little: unit 1142, integration 255, vm 6, py39 1389 (unit + integration
# without test_systemd_units.py), packaging 4 scripts.
MINIMUMS = {"unit": 1100, "integration": 240, "vm": 6, "py39": 1340, "packaging": 4}
# The namespace tests wait far more than they compute (daemons settling,
# keepalived elections, a NIC flapping for 30 s), each in namespaces of its
# own: four at a time on two cores (pytest-xdist) take ~6 min instead of ~25.
PARALLEL = ["-n", "4"]
PYTEST_PATHS = {"unit": ["tests/unit"], "integration": [*PARALLEL, "tests/integration"],
                # the VM runs: each waits mostly on its guest's boot and steps;
                # two at a time (a VM keeps about one core busy while booting),
                # in the order tests/vm/conftest.py gives them
                "vm": ["-n", "2", "--dist", "load", "tests/vm"]}
PACKAGING_STEPS = (["bash", "tests/packaging/test-deb.sh", "bookworm"],
                   ["bash", "tests/packaging/test-deb.sh", "bullseye"],
                   ["bash", "tests/packaging/test-deb.sh", "trixie"],
                   ["bash", "tests/packaging/test-rpm.sh"])
# An operator may leave a heavy tier out on purpose; it is said, not hidden.
OPT_OUT = {"vm": "ENI_AGENT_VM_TESTS", "py39": "ENI_AGENT_PY39_TESTS",
           "packaging": "ENI_AGENT_PACKAGING_TESTS"}


@dataclass(frozen=True)
class Counts:
    collected: int = 0
    passed: int = 0
    failed: int = 0  # failures and errors (collection errors included)
    skipped: int = 0


def count_junit(xml_text: str) -> Counts:
    """The counts of a pytest --junitxml report (every testcase, collection
    errors included)."""
    root = ET.fromstring(xml_text)
    collected = failed = skipped = 0
    for case in root.iter("testcase"):
        collected += 1
        outcome = {child.tag for child in case}
        if outcome & {"failure", "error"}:
            failed += 1
        elif "skipped" in outcome:
            skipped += 1
    return Counts(collected, collected - failed - skipped, failed, skipped)


def summary_line(tier: str, counts: Counts, seconds: float, minimum: int | None) -> str:
    bound = f" (minimum {minimum})" if minimum is not None else " (no minimum: arguments given)"
    return (f"== tier {tier}: collected {counts.collected}, passed {counts.passed}, "
            f"failed {counts.failed}, skipped {counts.skipped} in {seconds:.1f} s{bound}")


def verdict(status: int, counts: Counts, minimum: int | None) -> tuple[int, str | None]:
    """(exit status, why it failed or None) of a tier that exited `status`."""
    if status != 0:
        return status, f"exit status {status}"
    if counts.collected == 0:
        return 5, "no test collected"
    if minimum is not None and counts.collected < minimum:
        return 1, (f"collected {counts.collected}, fewer than its minimum {minimum} "
                   "(a lost directory, an import error, a module-level skip?)")
    if counts.failed:
        return 1, f"{counts.failed} failed"
    return 0, None


def plan(args: list[str]) -> tuple[list[tuple[str, list[str] | None]], list[str]]:
    """([(tier, pytest args or None for the tier's own)], [what is left out])."""
    if not args:
        return [(tier, None) for tier in TIERS], []
    if all(arg in TIERS for arg in args):
        chosen = [tier for tier in TIERS if tier in args]
        return [(tier, None) for tier in chosen], [t for t in TIERS if t not in chosen]
    pytest_tiers = ", ".join(PYTEST_PATHS)
    return [("pytest", list(args))], [t for t in TIERS if t not in PYTEST_PATHS] + [
        f"the minimums of {pytest_tiers} (only what the arguments select runs)"]


def describe(tier: str, args: list[str] | None) -> str:
    """What running `tier` does, as commands."""
    if tier == "py39":
        return "bash tests/py39/run.sh"
    if tier == "packaging":
        return "; ".join(" ".join(step) for step in PACKAGING_STEPS)
    return "pytest " + " ".join(args if args is not None else PYTEST_PATHS[tier])


def opted_out(tier: str, env: dict[str, str]) -> str | None:
    variable = OPT_OUT.get(tier)
    return f"{variable}=0" if variable and env.get(variable) == "0" else None


def run_pytest(args: list[str], env: dict[str, str]) -> tuple[int, Counts]:
    with tempfile.TemporaryDirectory(prefix="eni-agent-tier-") as scratch:
        junit = Path(scratch) / "junit.xml"
        status = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  f"--junitxml={junit}", *args], cwd=REPO, env=env)
        return status, count_junit(junit.read_text()) if junit.exists() else Counts()


def run_py39(env: dict[str, str]) -> tuple[int, Counts]:
    with tempfile.TemporaryDirectory(prefix="eni-agent-tier-") as scratch:
        junit = Path(scratch) / "junit.xml"
        status = subprocess.call(["bash", "tests/py39/run.sh"], cwd=REPO,
                                 env={**env, "ENI_AGENT_JUNIT": str(junit)})
        return status, count_junit(junit.read_text()) if junit.exists() else Counts()


def run_packaging(env: dict[str, str]) -> tuple[int, Counts]:
    failed = 0
    for step in PACKAGING_STEPS:
        if subprocess.call(step, cwd=REPO, env=env) != 0:
            failed += 1
            print(f"== packaging: {' '.join(step)} failed", flush=True)
    n = len(PACKAGING_STEPS)
    return (1 if failed else 0), Counts(n, n - failed, failed, 0)


def run_tier(tier: str, args: list[str] | None, env: dict[str, str]) -> int:
    reason = opted_out(tier, env)
    if reason is not None:
        print(f"== tier {tier}: left out ({reason})", flush=True)
        return 0
    start = time.monotonic()
    if tier == "py39":
        status, counts = run_py39(env)
    elif tier == "packaging":
        status, counts = run_packaging(env)
    else:
        status, counts = run_pytest(args if args is not None else PYTEST_PATHS[tier], env)
    minimum = MINIMUMS.get(tier) if args is None else None
    print(summary_line(tier, counts, time.monotonic() - start, minimum), flush=True)
    code, why = verdict(status, counts, minimum)
    if why is not None:
        print(f"== tier {tier} FAILED: {why}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "plan"):
        print(__doc__, file=sys.stderr)
        return 2
    runs, left_out = plan(argv[1:])
    if left_out:
        print(f"== .ci/run {' '.join(argv[1:])}: leaves out {', '.join(left_out)}", flush=True)
    if argv[0] == "plan":
        for tier, args in runs:
            print(f"{tier}: {describe(tier, args)}")
        return 0
    for i, (tier, args) in enumerate(runs):
        code = run_tier(tier, args, dict(os.environ))
        if code != 0:
            rest = [t for t, _ in runs[i + 1:]]
            if rest:
                print(f"== not run after that failure: {', '.join(rest)}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
