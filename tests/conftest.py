"""Suite-wide rule: where the integration tests are required, a skip is a failure.

Under CI (CI=true, as CI services set it) or with ENI_AGENT_REQUIRE_INTEGRATION=1
(.ci/run sets it), an integration test (tests/integration) that skips — not
root, no systemd-analyze, no nft, ... — is reported as failed with the skip's
reason, so a green run means they ran. Elsewhere a skip stays a skip (a
developer without root runs the unit tests). The real-VM tests (tests/vm)
keep their own switch, ENI_AGENT_VM_TESTS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def integration_required() -> bool:
    return (os.environ.get("CI", "").lower() == "true"
            or os.environ.get("ENI_AGENT_REQUIRE_INTEGRATION") == "1")


def is_integration(item: pytest.Item) -> bool:
    return INTEGRATION_DIR in Path(str(item.path)).resolve().parents


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail") and integration_required()
            and is_integration(item)):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"integration test skipped ({reason}), which CI does not allow "
                           "(CI=true or ENI_AGENT_REQUIRE_INTEGRATION=1; see tests/conftest.py)")
