"""The shipped systemd units: they verify cleanly, are hardened (offline
`systemd-analyze security` exposure <= 2.0), and declare what the daemon
relies on. Needs neither root nor namespaces; skipped without systemd-analyze."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = {"eni-agent.service": "notify", "eni-agent-sync.service": "oneshot",
         "eni-agent-guard.service": "oneshot"}
MAX_EXPOSURE = 2.0
SHIPPED_PATH = "/usr/local/bin/eni-agent"

systemd_analyze = shutil.which("systemd-analyze")
pytestmark = [pytest.mark.rootless,
              pytest.mark.skipif(systemd_analyze is None, reason="systemd-analyze is not installed")]


def eni_agent_script() -> Path:
    script = REPO / ".venv" / "bin" / "eni-agent"
    if not script.exists():
        found = shutil.which("eni-agent")
        if found is None:
            pytest.skip("no eni-agent script installed (venv or PATH)")
        script = Path(found)
    return script.resolve()


@pytest.fixture(scope="module")
def units(tmp_path_factory) -> dict[str, Path]:
    """The units copied to a temp dir, ExecStart pointing at the installed script."""
    directory = tmp_path_factory.mktemp("units")
    script = eni_agent_script()
    copied = {}
    for name in UNITS:
        text = (REPO / "systemd" / name).read_text()
        assert f"ExecStart={SHIPPED_PATH} " in text
        copied[name] = directory / name
        copied[name].write_text(text.replace(SHIPPED_PATH, str(script)))
    return copied


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([systemd_analyze, *args], capture_output=True, text=True, timeout=60)


def service_section(path: Path) -> dict[str, list[str]]:
    """[Service] settings; repeated keys (SystemCallFilter=) keep every value."""
    settings: dict[str, list[str]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_verifies_without_complaint(units, name):
    cp = analyze("verify", str(units[name]))
    print(f"systemd-analyze verify {name}: exit {cp.returncode}\n{cp.stdout}{cp.stderr}")
    assert cp.returncode == 0, cp.stderr
    complaints = [line for line in cp.stderr.splitlines() if name in line or "eni-agent" in line]
    assert complaints == []


def test_verify_notices_a_missing_executable(tmp_path):
    """Control: verify does check ExecStart, so the test above means something."""
    unit = tmp_path / "eni-agent.service"
    unit.write_text((REPO / "systemd" / "eni-agent.service").read_text()
                    .replace(SHIPPED_PATH, str(tmp_path / "no-such-eni-agent")))
    cp = analyze("verify", str(unit))
    assert cp.returncode != 0 and "no-such-eni-agent" in cp.stderr


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_security_exposure_is_low(units, name):
    cp = analyze("security", "--offline=yes", "--no-pager", str(units[name]))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", cp.stdout)
    assert match, f"exit {cp.returncode}\n{cp.stdout[-2000:]}\n{cp.stderr}"
    exposure = float(match.group(1))
    print(f"{name}: overall exposure {exposure}")
    assert exposure <= MAX_EXPOSURE


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_declares_type_capabilities_and_address_families(name):
    path = REPO / "systemd" / name
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())  # parses as INI at all
    service = service_section(path)
    assert service["Type"] == [UNITS[name]]
    assert service["ExecStart"][0].startswith(f"{SHIPPED_PATH} ")
    if name == "eni-agent-guard.service":
        # files only, before the network: no capability, no network, no netlink
        assert service["ExecStart"] == [f"{SHIPPED_PATH} guard"]
        assert service["CapabilityBoundingSet"] == [""]
        assert service["RestrictAddressFamilies"] == ["AF_UNIX"]
        assert service["PrivateNetwork"] == ["yes"]
        return
    assert service["CapabilityBoundingSet"] == ["CAP_NET_ADMIN"]
    assert service["RestrictAddressFamilies"] == ["AF_NETLINK AF_UNIX AF_INET AF_INET6"]
    if UNITS[name] == "notify":
        assert service["ExecStart"] == [f"{SHIPPED_PATH} daemon"]
        assert service["NotifyAccess"] == ["main"]  # READY=1 comes from the main process
        assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads
    else:
        assert service["ExecStart"] == [f"{SHIPPED_PATH} sync"]
        assert service["RemainAfterExit"] == ["yes"]
