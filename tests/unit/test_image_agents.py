"""eni_agent.image_agents: other agents on the image, found in a root directory and reported."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from eni_agent import image_agents
from eni_agent.coexist import Paths
from eni_agent.config import Config

ENI1 = "00:16:3e:00:01:01"
PRIMARY = "00:16:3e:00:00:01"


def write(root: Path, path: str, text: str = "") -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    link = root / "etc/systemd/system" / f"{target}.wants" / unit
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(f"/usr/lib/systemd/system/{unit}")


# -- nm-cloud-setup ---------------------------------------------------------------

ALIYUN_DROP_IN = "[Service]\nEnvironment=NM_CLOUD_SETUP_ALIYUN=yes\n"


@pytest.mark.parametrize("units, drop_ins, found", [
    (["nm-cloud-setup.timer"], {"etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf":
                                ALIYUN_DROP_IN}, True),
    (["nm-cloud-setup.service"], {"etc/systemd/system/nm-cloud-setup.service.d/a.conf":
                                  '[Service]\nEnvironment="X=1" "NM_CLOUD_SETUP_ALIYUN=true"\n'},
     True),
    ([], {"etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf": ALIYUN_DROP_IN}, False),
    (["nm-cloud-setup.timer"], {}, False),                                  # no provider on
    (["nm-cloud-setup.timer"], {"etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf":
                                "[Service]\nEnvironment=NM_CLOUD_SETUP_EC2=yes\n"}, False),
    (["nm-cloud-setup.timer"], {                                            # a later file resets
        "etc/systemd/system/nm-cloud-setup.service.d/10-on.conf": ALIYUN_DROP_IN,
        "etc/systemd/system/nm-cloud-setup.service.d/20-off.conf": "[Service]\nEnvironment=\n"},
     False),
    (["nm-cloud-setup.timer"], {                                            # /etc hides /usr/lib
        "usr/lib/systemd/system/nm-cloud-setup.service.d/aliyun.conf": ALIYUN_DROP_IN,
        "etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf":
            "[Service]\nEnvironment=NM_CLOUD_SETUP_ALIYUN=no\n"}, False),
    (["nm-cloud-setup.timer"], {"etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf":
                                "[Unit]\nEnvironment=NM_CLOUD_SETUP_ALIYUN=yes\n"}, False),
])
def test_nm_cloud_setup_aliyun(tmp_path, units, drop_ins, found):
    for unit in units:
        enable(tmp_path, unit, "timers.target" if unit.endswith(".timer") else "NetworkManager.service")
    for path, text in drop_ins.items():
        write(tmp_path, path, text)
    finding = image_agents.nm_cloud_setup_aliyun(tmp_path)
    assert (finding is not None) is found
    if found:
        assert "systemctl disable --now nm-cloud-setup.timer" in finding
        assert "/etc/systemd/system/nm-cloud-setup.service.d/" in finding


# -- multi-nic-util ---------------------------------------------------------------

@pytest.mark.parametrize("files, enabled_unit, expect", [
    ([], False, None),
    (["usr/lib/systemd/system/eni.service"], False, "installed (/usr/lib/systemd/system/eni.service)"),
    (["usr/lib/systemd/system/eni.service", "etc/udev/rules.d/61-eni.rules"], True,
     "enabled (/usr/lib/systemd/system/eni.service, /etc/udev/rules.d/61-eni.rules)"),
    (["lib/udev/rules.d/61-eni.rules"], False, "installed (/lib/udev/rules.d/61-eni.rules)"),
])
def test_multi_nic_util(tmp_path, files, enabled_unit, expect):
    for path in files:
        write(tmp_path, path, "x")
    if enabled_unit:
        enable(tmp_path, "eni.service")
    finding = image_agents.multi_nic_util(tmp_path)
    if expect is None:
        assert finding is None
    else:
        assert expect in finding and "systemctl disable --now eni.service" in finding


# -- cloud-init --------------------------------------------------------------------

NETPLAN = f"""\
network:
    ethernets:
        eth0:
            dhcp4: true
            match:
                macaddress: {PRIMARY}
            set-name: eth0
        eth1:
            dhcp4: true
            dhcp4-overrides:
                route-metric: 200
            match:
                macaddress: {ENI1}
            set-name: eth1
    version: 2
"""
NETPLAN_PRIMARY_ONLY = NETPLAN.split("        eth1:")[0] + "    version: 2\n"


@pytest.mark.parametrize("path, text, found", [
    ("etc/netplan/50-cloud-init.yaml", NETPLAN, True),
    ("etc/netplan/50-cloud-init.yaml", NETPLAN_PRIMARY_ONLY, False),
    ("etc/netplan/50-cloud-init.yaml", NETPLAN.replace("eth1", "ens6"), True),  # by MAC
    ("etc/network/interfaces.d/50-cloud-init", "auto eth1\niface eth1 inet dhcp\n", True),
    ("etc/network/interfaces.d/50-cloud-init", "auto eth0\niface eth0 inet dhcp\n", False),
    ("etc/NetworkManager/system-connections/cloud-init-eth1.nmconnection",
     f"[connection]\nid=cloud-init eth1\n[ethernet]\nmac-address={ENI1.upper()}\n", True),
    ("etc/sysconfig/network-scripts/ifcfg-eth1",
     "# Created by cloud-init on instance boot automatically\nBOOTPROTO=dhcp\nDEVICE=eth1\n", True),
    ("etc/sysconfig/network-scripts/ifcfg-eth1", "BOOTPROTO=dhcp\nDEVICE=eth1\n", False),
])
def test_cloud_init_findings(tmp_path, path, text, found):
    write(tmp_path, path, text)
    findings = image_agents.cloud_init_findings(tmp_path, ENI1, "eth1")
    assert len(findings) == int(found)
    if found:
        assert "/" + path in findings[0] and "apply_full_imds_network_config" in findings[0]


# -- NetworkManager profiles, wicked -------------------------------------------------

@pytest.mark.parametrize("path, text, on, expect", [
    ("etc/NetworkManager/system-connections/Wired connection 2.nmconnection",
     "[connection]\nid=Wired connection 2\ninterface-name=eth1\n", True, ["keeps NetworkManager"]),
    ("etc/NetworkManager/system-connections/eth1.nmconnection",
     f"[ethernet]\nmac-address={ENI1.upper()}\n", False, ["NetworkManager activates it"]),
    ("etc/NetworkManager/system-connections/eth0.nmconnection",
     f"[ethernet]\nmac-address={PRIMARY}\n", True, []),
    ("etc/sysconfig/network-scripts/ifcfg-eth1", "DEVICE=eth1\nBOOTPROTO=dhcp\n", True,
     ["NetworkManager has a connection profile for eth1"]),
    ("etc/sysconfig/network/ifcfg-eth1", "BOOTPROTO='dhcp'\nSTARTMODE='hotplug'\n", True,
     ["wicked (SUSE) configures eth1"]),
])
def test_nm_profile_findings(tmp_path, path, text, on, expect):
    write(tmp_path, path, text)
    findings = image_agents.nm_profile_findings(tmp_path, ENI1, "eth1", on)
    assert len(findings) == len(expect)
    for finding, part in zip(findings, expect):
        assert part in finding and ENI1 in finding


def test_eni_findings_of_an_eni_not_attached(tmp_path):
    write(tmp_path, "etc/netplan/50-cloud-init.yaml", NETPLAN)
    assert image_agents.eni_findings(tmp_path, ENI1, None) == []


# -- reporting ---------------------------------------------------------------------

def image(tmp_path: Path) -> Paths:
    """A root with one of each: an ifupdown stanza, cloud-init's netplan, nm-cloud-setup."""
    paths = Paths.under(tmp_path)
    write(tmp_path, "etc/network/interfaces", "source interfaces.d/*\n")
    write(tmp_path, "etc/network/interfaces.d/eth1", "iface eth1 inet dhcp\n")
    write(tmp_path, "etc/netplan/50-cloud-init.yaml", NETPLAN)
    enable(tmp_path, "nm-cloud-setup.timer", "timers.target")
    write(tmp_path, "etc/systemd/system/nm-cloud-setup.service.d/aliyun.conf", ALIYUN_DROP_IN)
    return paths


def report_of(*enis):
    return SimpleNamespace(enis=list(enis), warnings=[])


def test_notices_are_logged_once(tmp_path, caplog):
    paths = image(tmp_path)
    eni = SimpleNamespace(mac=ENI1, eni_id="eni-1", link="eth1",
                          warnings=["eth1 also holds 10.0.1.10/24, added by another tool"])
    report = report_of(eni, SimpleNamespace(mac="00:16:3e:00:02:01", eni_id=None, link=None,
                                            warnings=[]))
    notices = image_agents.Notices(paths)
    with caplog.at_level(logging.WARNING, "eni_agent.coexist"):
        first = notices.log(Config(), report)
        again = notices.log(Config(), report)
    assert len(first) == 4 and again == []  # nm-cloud-setup, engine's, ifupdown, cloud-init
    assert caplog.text.count("eni-1: ") == 3 and caplog.text.count("nm-cloud-setup runs") == 1
    assert "systemctl restart networking` then takes eth1 down" in caplog.text
    # and the report the daemon publishes (`status` while it runs) carries them
    assert len(report.warnings) == 1 and report.warnings[0].startswith("nm-cloud-setup runs")
    assert [w.split(" ", 2)[:2] for w in eni.warnings[1:]] == [["ifupdown", "brings"],
                                                               ["cloud-init's", "network"]]


def test_annotate_puts_the_findings_in_the_report(tmp_path):
    paths = image(tmp_path)
    eni = SimpleNamespace(mac=ENI1, eni_id="eni-1", link="eth1", warnings=[])
    report = report_of(eni)
    image_agents.annotate(report, Config(), paths)
    image_agents.annotate(report, Config(), paths)  # idempotent
    assert len(report.warnings) == 1 and report.warnings[0].startswith("nm-cloud-setup runs")
    assert [w.split(" ", 2)[:2] for w in eni.warnings] == [["ifupdown", "brings"],
                                                           ["cloud-init's", "network"]]


def test_a_clean_image_has_nothing_to_say(tmp_path):
    eni = SimpleNamespace(mac=ENI1, eni_id="eni-1", link="eth1", warnings=[])
    report = report_of(eni)
    image_agents.annotate(report, Config(), Paths.under(tmp_path))
    assert report.warnings == [] and eni.warnings == []
