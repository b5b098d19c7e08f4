"""Suite-wide rules: where a tier is required, a skip is a failure; and the
run leaves the host's network-manager files as it found them.

Required tiers:
  - tests/unit and tests/integration under CI (CI=true, as CI services set it)
    or with ENI_AGENT_REQUIRE_INTEGRATION=1 (.ci/run sets it): a test that
    skips (not root, no systemd-analyze, no nft, ...) is reported as failed
    with the skip's reason, so a green run means they ran;
  - tests/vm with ENI_AGENT_VM_TESTS=1 (.ci/run's default): a VM test that
    skips (no /dev/net/tun, no qemu, vagrant not installable) fails.
A skip at collection (a module-level `pytest.skip`, a conftest that skips a
directory) in a required tier is a collection error. Elsewhere a skip stays a
skip (a developer without root runs the unit tests). Every tier's count is
checked against its minimum by .ci/tier.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


def integration_required() -> bool:
    return (os.environ.get("CI", "").lower() == "true"
            or os.environ.get("ENI_AGENT_REQUIRE_INTEGRATION") == "1")


def required_tier(path: object) -> str | None:
    """The name of the required tier (what switches it on) `path` belongs
    to, or None."""
    resolved = Path(str(path)).resolve()
    for tier in ("unit", "integration"):
        if TESTS_DIR / tier in (resolved, *resolved.parents) and integration_required():
            return f"{tier} (CI=true or ENI_AGENT_REQUIRE_INTEGRATION=1)"
    if TESTS_DIR / "vm" in (resolved, *resolved.parents) \
            and os.environ.get("ENI_AGENT_VM_TESTS") == "1":
        return "vm (ENI_AGENT_VM_TESTS=1)"
    return None


def _reason(longrepr: object) -> object:
    return longrepr[2] if isinstance(longrepr, tuple) else longrepr


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    tier = required_tier(item.path) if report.skipped else None
    if tier is not None and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (f"skipped ({_reason(report.longrepr)}) in the required tier {tier}, "
                           "which does not allow it (see tests/conftest.py)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    report = outcome.get_result()
    tier = required_tier(collector.path) if report.skipped else None
    if tier is not None:
        report.outcome = "failed"
        report.longrepr = (f"skipped at collection ({_reason(report.longrepr)}) in the required "
                           f"tier {tier}, which does not allow it (see tests/conftest.py)")


# Where eni-agent keeps the host's network managers off the ENIs (coexist.py).
# A test must never change them: an agent run outside a namespace of its own
# would reconfigure the network of whoever runs the suite.
HOST_MANAGER_DIRS = (Path("/run/systemd/network"), Path("/etc/NetworkManager/conf.d"),
                     Path("/etc/dhcp/dhclient-enter-hooks.d"))


def snapshot(directory: Path) -> dict[str, tuple] | None:
    """{name: (mode, size, mtime_ns, link target or None)} of a directory's
    entries, or None if it does not exist."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return None
    entries = {}
    for name in names:
        path = directory / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        target = os.readlink(path) if path.is_symlink() else None
        entries[name] = (st.st_mode, st.st_size, st.st_mtime_ns, target)
    return entries


def host_changes(before: dict[Path, dict | None], after: dict[Path, dict | None]) -> list[str]:
    """What differs between two snapshots, one line per entry."""
    changes = []
    for directory in before:
        old, new = before[directory], after[directory]
        if old is None or new is None:
            if old != new:
                changes.append(f"{directory}: {'created' if old is None else 'removed'}")
            continue
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                what = ("added" if name not in old else "removed" if name not in new
                        else "changed")
                changes.append(f"{directory / name}: {what}")
    return changes


@pytest.fixture(scope="session", autouse=True)
def _host_network_managers_untouched():
    """Fail the run if the host's network-manager files changed during it."""
    before = {d: snapshot(d) for d in HOST_MANAGER_DIRS}
    yield
    changes = host_changes(before, {d: snapshot(d) for d in HOST_MANAGER_DIRS})
    if changes:
        pytest.fail("the test run changed the host's network-manager files: "
                    + "; ".join(changes), pytrace=False)
