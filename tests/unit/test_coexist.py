"""eni_agent.coexist: the files that keep network managers off the ENIs, and the notices."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from eni_agent import coexist, manager_configs
from eni_agent.coexist import Managers, Paths
from eni_agent.config import Config
from eni_agent.model import parse_metadata

ENI1, ENI2 = "00:16:3e:00:01:01", "00:16:3e:00:02:01"
PRIMARY = "00:16:3e:00:00:01"


def metadata(*macs: str):
    def nic(mac: str, n: int) -> dict:
        return {"network-interface-id": f"eni-{n}", "primary-ip-address": f"10.0.{n}.10",
                "private-ipv4s": [f"10.0.{n}.10"], "netmask": "255.255.255.0",
                "gateway": f"10.0.{n}.253", "vswitch-cidr-block": f"10.0.{n}.0/24"}
    doc = {"mac": PRIMARY, "network": {"interfaces": {"macs": {
        mac: nic(mac, i) for i, mac in enumerate((PRIMARY,) + macs)}}}}
    import json
    return parse_metadata(json.dumps(doc))


@pytest.fixture()
def paths(tmp_path: Path) -> Paths:
    p = Paths.under(tmp_path)
    p.nm_conf_dir.mkdir(parents=True)
    p.dhclient_hooks_dir.mkdir(parents=True)
    (tmp_path / "lib/systemd").mkdir(parents=True)
    (tmp_path / "lib/systemd/systemd-networkd").write_text("")
    return p


@pytest.fixture()
def no_commands(monkeypatch):
    """Record the commands instead of running them; every manager is running."""
    ran = []

    def run(*argv):
        if argv[:2] == ("systemctl", "is-active"):
            return subprocess.CompletedProcess(argv, 0)
        ran.append(argv)
    monkeypatch.setattr(coexist, "_run", run)
    return ran


def test_apply_asks_only_running_managers_to_reload(paths, monkeypatch):
    ran = []

    def run(*argv):
        if argv[:2] == ("systemctl", "is-active"):
            return subprocess.CompletedProcess(argv, 0 if argv[-1] == "NetworkManager.service" else 3)
        ran.append(argv)
    monkeypatch.setattr(coexist, "_run", run)
    coexist.apply(Config(), metadata(ENI1), paths)
    assert ("nmcli", "general", "reload", "conf") in ran
    assert ("networkctl", "reload") not in ran  # written, but networkd is not running
    assert (paths.networkd_runtime_dir / coexist.networkd_unit_name(ENI1)).exists()


# -- enabled -------------------------------------------------------------------

@pytest.mark.parametrize("settings, on", [
    ({}, True),                                                     # the new default
    ({"networkmanager_unmanaged": False}, True),
    ({"keep_managers_off": False}, False),
    ({"keep_managers_off": False, "networkmanager_unmanaged": True}, True),  # the old name
])
def test_enabled(settings, on):
    assert coexist.enabled(SimpleNamespace(**settings)) is on


def test_enabled_with_todays_config_defaults():
    assert coexist.enabled(Config()) is True


# -- the files' texts ------------------------------------------------------------

@pytest.mark.parametrize("macs, line", [
    ([ENI2, ENI1], f"unmanaged-devices=mac:{ENI1};mac:{ENI2}"),
    ([ENI1], f"unmanaged-devices=mac:{ENI1}"),
    ([], None),
])
def test_nm_unmanaged_text(macs, line):
    text = coexist.nm_unmanaged_text(macs)
    assert "[keyfile]" in text.splitlines()
    found = [l for l in text.splitlines() if l.startswith("unmanaged-devices")]
    assert found == ([line] if line else [])


def test_networkd_unit_sorts_before_catch_alls_and_matches_only_the_mac():
    name = coexist.networkd_unit_name(ENI1)
    assert name == "05-eni-agent-00163e000101.network"
    for catch_all in ("10-netplan-all-en.network", "70-ens5.network", "80-ec2.network",
                      "99-dhcp.network", "10-eni-vm-primary.network"):
        assert sorted([catch_all, name])[0] == name
    match = manager_configs.parse_networkd_match(coexist.networkd_unit_text(ENI1))
    assert match == {"MACAddress": [ENI1], "Type": ["ether"]}
    assert "\n[Link]\nUnmanaged=yes\n" in coexist.networkd_unit_text(ENI1)


@pytest.mark.parametrize("listed, nic, dropped", [
    ([ENI1], "eth1", True),
    ([ENI1.upper()], "eth1", True),
    ([ENI2], "eth1", False),
    ([], "eth1", False),
    ([ENI1], "eth0", False),
    # no list yet (eni-agent has not read the metadata this boot): only the
    # first NIC (lowest ifindex, the primary on ECS) keeps its routers
    (None, "eth0", False),
    (None, "eth1", True),
    (None, "veth9", False),  # not a NIC with a device: left alone
])
def test_dhclient_hook_drops_routers_on_enis(tmp_path, listed, nic, dropped):
    macs_file = tmp_path / "dhclient-macs"
    if listed is not None:
        macs_file.write_text(coexist.dhclient_macs_text(listed))
    sysfs = tmp_path / "sys"
    for name, mac, index, device in (("eth0", PRIMARY, 2, True), ("eth1", ENI1, 3, True),
                                     ("veth9", ENI2, 1, False)):
        (sysfs / name).mkdir(parents=True)
        (sysfs / name / "address").write_text(mac + "\n")
        (sysfs / name / "ifindex").write_text(f"{index}\n")
        if device:
            (sysfs / name / "device").mkdir()
    hook = tmp_path / "hook"
    hook.write_text(coexist.dhclient_hook_text(macs_file).replace("/sys/class/net", str(sysfs)))
    script = (f'interface={nic} new_routers=10.0.1.253 new_domain_name_servers=1.1.1.1 '
              f'new_rfc3442_classless_static_routes="0 10 0 1 253"; . {hook}; '
              'echo "routers=$new_routers dns=$new_domain_name_servers '
              'classless=$new_rfc3442_classless_static_routes"; set | grep -c "^eni_agent_" || true')
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    result, leftovers = out.strip().splitlines()
    if dropped:
        assert result == "routers= dns= classless="
    else:
        assert result == "routers=10.0.1.253 dns=1.1.1.1 classless=0 10 0 1 253"
    assert leftovers == "0"  # the hook leaves no variables behind in dhclient-script


# -- desired files and the plan -----------------------------------------------------

@pytest.mark.parametrize("managers, on, expect", [
    (Managers(), True, set()),
    (Managers(networkmanager=True), True, {"etc/NetworkManager/conf.d/90-eni-agent-unmanaged.conf",
                                           "var/lib/eni-agent/kept-off-macs"}),
    (Managers(networkd=True), True, {"run/systemd/network/05-eni-agent-00163e000101.network",
                                     "run/systemd/network/05-eni-agent-00163e000201.network",
                                     "var/lib/eni-agent/kept-off-macs"}),
    (Managers(dhclient=True), True, {"etc/dhcp/dhclient-enter-hooks.d/eni-agent",
                                     "run/eni-agent/dhclient-macs", "var/lib/eni-agent/kept-off-macs"}),
    (Managers(udev=True), True, {"run/udev/rules.d/90-eni-agent-managed-by.rules", "var/lib/eni-agent/kept-off-macs"}),
    (Managers(True, True, True, True), False, set()),
])
def test_desired_files(tmp_path, managers, on, expect):
    files = coexist.desired_files([ENI2, ENI1], managers, on, Paths.under(tmp_path))
    assert {str(p.relative_to(tmp_path)) for p in files} == expect


@pytest.mark.parametrize("desired, existing, expect", [
    ({}, {}, []),
    ({Path("/a"): "x"}, {}, [("/a", "x")]),
    ({Path("/a"): "x"}, {Path("/a"): "x"}, []),
    ({Path("/a"): "y"}, {Path("/a"): "x"}, [("/a", "y")]),
    ({}, {Path("/a"): "x"}, [("/a", None)]),
    ({Path("/b"): "x"}, {Path("/a"): "x"}, [("/b", "x"), ("/a", None)]),
])
def test_plan_files(desired, existing, expect):
    assert [(str(c.path), c.text) for c in coexist.plan_files(desired, existing)] == expect


# -- apply -----------------------------------------------------------------------

def test_apply_writes_each_managers_files_and_reloads_them(paths, no_commands, tmp_path):
    sysfs = paths.sys_class_net
    for name, mac in (("eth0", PRIMARY), ("eth1", ENI1)):
        (sysfs / name).mkdir(parents=True)
        (sysfs / name / "address").write_text(mac + "\n")
    applied = coexist.apply(Config(), metadata(ENI1, ENI2), paths)
    assert not applied.failed
    nm = (paths.nm_conf_dir / coexist.NM_CONF_NAME).read_text()
    assert f"unmanaged-devices=mac:{ENI1};mac:{ENI2}" in nm
    assert PRIMARY not in nm
    units = sorted(p.name for p in paths.networkd_runtime_dir.iterdir())
    assert units == ["05-eni-agent-00163e000101.network", "05-eni-agent-00163e000201.network"]
    assert (paths.run_dir / "dhclient-macs").read_text() == f"{ENI1}\n{ENI2}\n"
    assert (paths.dhclient_hooks_dir / "eni-agent").is_file()
    # NM re-reads its config, and lets go of the present ENI NIC (eth1), not the primary
    assert ("nmcli", "general", "reload", "conf") in no_commands
    assert ("nmcli", "device", "set", "eth1", "managed", "no") in no_commands
    assert not any("eth0" in argv for argv in no_commands)
    assert ("networkctl", "reload") in no_commands


def test_apply_again_changes_nothing_and_runs_nothing(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1), paths)
    no_commands.clear()
    applied = coexist.apply(Config(), metadata(ENI1), paths)
    assert applied.changes == [] and no_commands == []


def test_apply_follows_an_eni_detached(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1, ENI2), paths)
    no_commands.clear()
    coexist.apply(Config(), metadata(ENI1), paths)
    assert [p.name for p in paths.networkd_runtime_dir.iterdir()] == [
        "05-eni-agent-00163e000101.network"]
    assert ENI2 not in (paths.nm_conf_dir / coexist.NM_CONF_NAME).read_text()
    assert ("networkctl", "reload") in no_commands


def test_apply_turned_off_removes_what_it_wrote(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1), paths)
    off = SimpleNamespace(keep_managers_off=False, networkmanager_unmanaged=False, ignore_macs=())
    coexist.apply(off, metadata(ENI1), paths)
    assert coexist.owned_paths(paths) == []


def test_apply_leaves_ignored_macs_to_the_managers(paths, no_commands):
    coexist.apply(Config(ignore_macs=(ENI2,)), metadata(ENI1, ENI2), paths)
    assert ENI2 not in (paths.nm_conf_dir / coexist.NM_CONF_NAME).read_text()
    assert not (paths.networkd_runtime_dir / coexist.networkd_unit_name(ENI2)).exists()


def test_apply_without_managers_writes_nothing(tmp_path, no_commands):
    paths = Paths.under(tmp_path)
    applied = coexist.apply(Config(), metadata(ENI1), paths)
    assert applied.changes == [] and no_commands == [] and list(tmp_path.iterdir()) == []


def test_apply_logs_and_goes_on_when_a_directory_is_read_only(paths, no_commands, caplog,
                                                              monkeypatch):
    real_write = coexist._write

    def write(path, text):
        if path.parent == paths.nm_conf_dir:
            raise PermissionError(13, "Read-only file system")
        real_write(path, text)
    monkeypatch.setattr(coexist, "_write", write)
    with caplog.at_level(logging.WARNING, "eni_agent.coexist"):
        applied = coexist.apply(Config(), metadata(ENI1), paths)
    assert len(applied.failed) == 1 and "Read-only" in caplog.text
    assert (paths.networkd_runtime_dir / coexist.networkd_unit_name(ENI1)).exists()
    assert ("nmcli", "general", "reload", "conf") not in no_commands


def test_udev_rule_marks_only_the_listed_nics_for_every_event_but_remove():
    text = coexist.udev_rule_text([ENI2, ENI1])
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == [
        f'SUBSYSTEM=="net", ACTION!="remove", ENV{{DEVTYPE}}=="", ATTR{{address}}=="{mac}", '
        'ENV{ID_NET_MANAGED_BY}="eni-agent", ENV{NM_UNMANAGED}="1"' for mac in (ENI1, ENI2)]


def test_udev_rule_written_where_udevd_runs_then_reloaded_and_removed(tmp_path, no_commands):
    paths = Paths.under(tmp_path)
    paths.udev_rules_dir.parent.mkdir(parents=True)  # /run/udev: udevd runs
    rule = paths.udev_rules_dir / "90-eni-agent-managed-by.rules"
    coexist.apply(Config(), metadata(ENI1), paths)
    assert ENI1 in rule.read_text() and no_commands == [("udevadm", "control", "--reload")]
    coexist.apply(Config(), metadata(), paths)  # no ENI listed any more: no rule
    assert not rule.exists()
    coexist.apply(Config(), metadata(ENI1), paths)
    remembered = paths.state_dir / "kept-off-macs"
    assert coexist.remove_all(paths) == [rule, remembered] and not rule.exists()
    assert no_commands[-1] == ("udevadm", "control", "--reload")


def test_remove_all(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1, ENI2), paths)
    removed = coexist.remove_all(paths)
    assert len(removed) == 6 and coexist.owned_paths(paths) == []


# -- the boot guard -------------------------------------------------------------------

def _runtime_files(paths: Paths) -> dict[str, str]:
    found = [p for d in (paths.run_dir, paths.networkd_runtime_dir, paths.udev_rules_dir)
             if d.is_dir() for p in d.iterdir()]
    return {str(p): p.read_text() for p in sorted(found)}


def _reboot(paths: Paths) -> None:
    """What a reboot does to eni-agent's files: /run is empty again."""
    import shutil
    for directory in (paths.run_dir, paths.networkd_runtime_dir, paths.udev_rules_dir):
        shutil.rmtree(directory, ignore_errors=True)


def test_guard_writes_again_after_a_reboot_what_the_last_run_wrote(paths, monkeypatch):
    paths.udev_rules_dir.parent.mkdir(parents=True)
    ran = []
    monkeypatch.setattr(coexist, "_run", lambda *argv: ran.append(argv))  # no manager runs yet
    coexist.apply(Config(), metadata(ENI1, ENI2), paths)
    before = _runtime_files(paths)
    assert len(before) == 4  # networkd x2, the udev rule, dhclient's list
    _reboot(paths)
    ran.clear()
    applied = coexist.guard(Config(), paths)
    assert applied is not None and not applied.failed
    assert _runtime_files(paths) == before
    # nothing asked to reload: the managers read the files when they start, and
    # udevd (busy with the boot's devices) notices a new rules file by itself
    assert ran == []


def test_guard_without_a_remembered_list_writes_nothing(paths, no_commands):
    assert coexist.guard(Config(), paths) is None
    assert coexist.owned_paths(paths) == [] and no_commands == []


def test_guard_follows_todays_config(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1, ENI2), paths)
    _reboot(paths)
    coexist.guard(Config(ignore_macs=(ENI2,)), paths)  # the operator ignored one since
    assert sorted(p.name for p in paths.networkd_runtime_dir.iterdir()) == [
        "05-eni-agent-00163e000101.network"]
    off = SimpleNamespace(keep_managers_off=False, networkmanager_unmanaged=False, ignore_macs=())
    coexist.guard(off, paths)
    assert coexist.owned_paths(paths) == []


def test_the_remembered_list_is_read_strictly(paths, no_commands):
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "kept-off-macs").write_text(
        f"# comment\n{ENI1.upper()}\n\n00:16:3e:00:02\nnot a mac\n{ENI1}\n/etc/passwd\n")
    coexist.guard(Config(), paths)
    assert sorted(p.name for p in paths.networkd_runtime_dir.iterdir()) == [
        "05-eni-agent-00163e000101.network"]


def test_no_eni_left_forgets_the_list(paths, no_commands):
    coexist.apply(Config(), metadata(ENI1), paths)
    assert (paths.state_dir / "kept-off-macs").read_text().endswith(f"{ENI1}\n")
    coexist.apply(Config(), metadata(), paths)
    assert not (paths.state_dir / "kept-off-macs").exists()


# -- notices ---------------------------------------------------------------------------

CATCH_ALL = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"
PRIMARY_ONLY = f"[Match]\nMACAddress={PRIMARY}\n\n[Network]\nDHCP=yes\n"


@pytest.mark.parametrize("text, ifname, mac, matches", [
    (CATCH_ALL, "eth1", ENI1, True),
    (CATCH_ALL, "ens5", ENI1, True),
    (CATCH_ALL, "wlan0", ENI1, False),
    (PRIMARY_ONLY, "eth1", ENI1, False),
    (PRIMARY_ONLY, "eth0", PRIMARY, True),
    ("[Match]\nName=!eth0\n", "eth1", ENI1, True),
    ("[Match]\nName=!eth0\n", "eth0", PRIMARY, False),
    ("[Match]\n[Network]\nDHCP=yes\n", "eth1", ENI1, True),        # no [Match] key: every link
    ("[Match]\nName=eth*\nKernelCommandLine=x\n", "eth1", ENI1, False),  # not judged: no claim
    ("[Match]\nName=eth*\nName=\nName=ens*\n", "eth1", ENI1, False),  # empty resets
    (coexist.networkd_unit_text(ENI1), "eth1", ENI1, True),
])
def test_networkd_matches(text, ifname, mac, matches):
    assert manager_configs.networkd_matches(manager_configs.parse_networkd_match(text), ifname, mac) is matches


@pytest.mark.parametrize("files, first", [
    ({"99-dhcp.network": CATCH_ALL}, "99-dhcp.network"),
    ({"99-dhcp.network": CATCH_ALL, coexist.networkd_unit_name(ENI1):
      coexist.networkd_unit_text(ENI1)}, coexist.networkd_unit_name(ENI1)),
    ({"01-all.network": CATCH_ALL, coexist.networkd_unit_name(ENI1):
      coexist.networkd_unit_text(ENI1)}, "01-all.network"),
    ({"10-primary.network": PRIMARY_ONLY}, None),
    ({}, None),
])
def test_first_networkd_file(files, first):
    assert manager_configs.first_networkd_file(files, "eth1", ENI1) == first


INTERFACES = """\
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug eth0 eth1   # both
iface eth1 inet dhcp
iface eth10 inet dhcp
"""


@pytest.mark.parametrize("ifname, stanzas", [
    ("eth1", ["allow-hotplug eth0 eth1", "iface eth1 inet dhcp"]),
    ("eth2", []),
    ("eth10", ["iface eth10 inet dhcp"]),
])
def test_ifupdown_stanzas(ifname, stanzas):
    assert manager_configs.ifupdown_stanzas(INTERFACES, ifname) == stanzas


@pytest.mark.parametrize("files, interfaces, engine, expect", [
    ({}, "", [], []),
    ({"99-dhcp.network": CATCH_ALL}, "", [], ["systemd-networkd applies 99-dhcp.network to eth1"]),
    ({"99-dhcp.network": CATCH_ALL, coexist.networkd_unit_name(ENI1):
      coexist.networkd_unit_text(ENI1)}, "", [], []),
    ({}, INTERFACES, [], ["ifupdown brings eth1"]),
    ({}, "", ["the main table has a default route via eth1 that eni-agent did not add"],
     ["the main table has a default route via eth1"]),
])
def test_notices(files, interfaces, engine, expect):
    found = manager_configs.notices(ENI1, "eth1", files, interfaces, engine)
    assert len(found) == len(expect)
    for notice, start in zip(found, expect):
        assert notice.startswith(start) and ENI1 in notice


def test_notices_of_an_eni_not_attached():
    assert manager_configs.notices(ENI1, None, {"99-dhcp.network": CATCH_ALL}, INTERFACES) == []
