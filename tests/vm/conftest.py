"""tests/vm: the VM lab's scenarios (basic/, failover/, managers/: real VMs
under qemu) and Vagrant. Slow; see tests/vm/NOTES.md.

ENI_AGENT_VM_TESTS=0 skips them; =1 runs them even where qemu or vagrant is not
installed yet (they install it); unset: they run where the tools are present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "vm: boots a real VM or runs vagrant (tests/vm)")


# The VM tier runs two tests at a time (pytest-xdist, `--dist load`): each worker
# is handed two tests at first and one more each time it finishes one, so this
# order makes two lanes of about equal length (minutes, 2026-12-06, load ~3):
# failover (3), then the Debian 12 managers (17), then basic (3); the Debian 12
# cloud-init group (12), then Debian 13 (12), then vagrant (0).
RUN_ORDER = ("test_failover.py", "[debian12-managers]", "[debian12-cloud-init]", "[debian13]",
             "test_vm.py", "test_vagrant_validate.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, key in enumerate(RUN_ORDER) if key in item.nodeid), len(RUN_ORDER))
    items.sort(key=rank)


def _skip_reason() -> str | None:
    wanted = os.environ.get("ENI_AGENT_VM_TESTS")
    if wanted == "0":
        return "ENI_AGENT_VM_TESTS=0"
    if os.geteuid() != 0:
        return "the VM test needs root (taps, namespaces, chroot)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun for the guest's taps"
    missing = [tool for tool in ("qemu-system-x86_64", "mmdebstrap") if not shutil.which(tool)]
    if missing and wanted != "1":
        return f"{', '.join(missing)} not installed (ENI_AGENT_VM_TESTS=1 installs them)"
    return None


@pytest.fixture
def run_scenario():
    """`run_scenario(name, timeout, *args, env=None)`: `bash tests/vm/NAME/run.sh
    ARGS...` (with `env` added to the environment), its output (stdout and
    stderr) printed and returned; skipped where no VM can boot."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)

    def run(name: str, timeout: float, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", str(HERE / name / "run.sh"), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
        print(proc.stdout)
        return proc

    return run

