"""Other agents on the image that configure ENIs too: found, and reported.

eni-agent keeps NetworkManager, systemd-networkd and dhclient off the ENIs
(coexist.py). Other tools an ECS image may carry do their own ENI work, and
the operator should hear about each once, with what to change:

- nm-cloud-setup with its Aliyun provider (NM_CLOUD_SETUP_ALIYUN=yes in the
  unit's environment): policy rules and tables 30200+/30400+ for every NIC
  NetworkManager activates;
- Alibaba's multi-nic-util (`eni.service`, `61-eni.rules`): configures every
  hot-added ENI itself;
- cloud-init's rendered network config naming an ENI (its AliYun datasource
  renders DHCP for every NIC the metadata lists unless
  `apply_full_imds_network_config: false`);
- NetworkManager connection profiles and ifcfg files (RHEL's network-scripts,
  SUSE's wicked) naming an ENI.

Everything here reads files below a root directory (`Paths.root`; tests use
a tmp root) and returns sentences; nothing is changed. `Notices` logs them
once per daemon, `annotate` puts them in `status`'s report.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path
from typing import Iterable

from eni_agent.coexist import PATHS, Paths, enabled
from eni_agent.manager_configs import (ifupdown_stanzas, notices, read_interfaces,
                                       read_networkd_files)

log = logging.getLogger("eni_agent.coexist")

CLOUD_CFG_DROP_IN = "/etc/cloud/cloud.cfg.d/90-eni-agent.cfg"  # shipped in the .deb and .rpm
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system",
             "lib/systemd/system")
UDEV_RULE_DIRS = ("etc/udev/rules.d", "run/udev/rules.d", "usr/lib/udev/rules.d",
                  "lib/udev/rules.d")
NM_CONNECTION_DIRS = ("etc/NetworkManager/system-connections",
                      "run/NetworkManager/system-connections")
TRUE_WORDS = {"1", "yes", "true", "on", "y"}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# -- host-wide -------------------------------------------------------------------

def unit_environment(root: Path, unit: str) -> dict[str, tuple[str, str]]:
    """The `Environment=` settings of a unit and its drop-ins: name -> (value,
    file that set it), in systemd's order (drop-ins by file name, /etc's file
    hiding a same-named one in /run or /usr/lib; an empty Environment= resets)."""
    files: list[Path] = []
    for directory in UNIT_DIRS:
        path = root / directory / unit
        if path.is_file():
            files.append(path)
            break
    drop_ins: dict[str, Path] = {}
    for directory in UNIT_DIRS:
        for path in sorted((root / directory / f"{unit}.d").glob("*.conf")):
            drop_ins.setdefault(path.name, path)
    files += [drop_ins[name] for name in sorted(drop_ins)]
    env: dict[str, tuple[str, str]] = {}
    for path in files:
        section = None
        for raw in _read(path).splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Service" and line.startswith("Environment="):
                value = line.split("=", 1)[1].strip()
                if not value:
                    env.clear()
                    continue
                try:
                    words = shlex.split(value)
                except ValueError:
                    continue
                for word in words:
                    if "=" in word:
                        name, setting = word.split("=", 1)
                        env[name] = (setting, "/" + str(path.relative_to(root)))
    return env


def unit_enabled(root: Path, unit: str) -> bool:
    """Is `unit` enabled (a symlink to it in some .wants/ of /etc/systemd/system)?"""
    return any((wants / unit).is_symlink() or (wants / unit).exists()
               for wants in (root / "etc/systemd/system").glob("*.wants"))


def nm_cloud_setup_aliyun(root: Path, on: bool = True) -> str | None:
    """nm-cloud-setup enabled with its Aliyun provider, or None."""
    units = [u for u in ("nm-cloud-setup.service", "nm-cloud-setup.timer")
             if unit_enabled(root, u)]
    value, where = unit_environment(root, "nm-cloud-setup.service").get(
        "NM_CLOUD_SETUP_ALIYUN", ("", ""))
    if not units or value.strip().lower() not in TRUE_WORDS:
        return None
    scope = ("eni-agent keeps NetworkManager off the ENIs (keep_managers_off), so it only "
             "works on the primary there" if on else
             "with keep_managers_off = false NetworkManager activates the ENIs, and nm-cloud-setup "
             "routes them beside eni-agent")
    return (f"nm-cloud-setup runs with its Aliyun provider ({' and '.join(units)} enabled, "
            f"NM_CLOUD_SETUP_ALIYUN={value} in {where}): it adds `from <ip>` rules and tables "
            f"30200+/30400+ for every NIC NetworkManager activates; {scope}. To leave ENI routing "
            "to eni-agent alone: systemctl disable --now nm-cloud-setup.timer "
            "nm-cloud-setup.service")


def multi_nic_util(root: Path) -> str | None:
    """Alibaba's multi-nic-util (`eni.service`, `61-eni.rules`) installed, or None."""
    found = [f"/{d}/eni.service" for d in UNIT_DIRS if (root / d / "eni.service").is_file()]
    found += [f"/{d}/61-eni.rules" for d in UDEV_RULE_DIRS if (root / d / "61-eni.rules").is_file()]
    if not found:
        return None
    state = "enabled" if unit_enabled(root, "eni.service") else "installed"
    return (f"Alibaba's multi-nic-util is {state} ({', '.join(found)}): it configures every "
            "ENI as it is attached (its own route tables and rules), competing with eni-agent; "
            "disable it: systemctl disable --now eni.service, and remove 61-eni.rules (or the "
            "multi-nic-util package)")


def host_findings(root: Path, on: bool = True) -> list[str]:
    return [f for f in (nm_cloud_setup_aliyun(root, on), multi_nic_util(root)) if f]


# -- per ENI ---------------------------------------------------------------------

def netplan_names(text: str, ifname: str, mac: str) -> bool:
    """Does a netplan YAML text configure this NIC (its name as a key or in
    set-name, or its MAC in a match)? A textual check: enough for the flat
    files cloud-init renders."""
    name = re.escape(ifname)
    return bool(re.search(rf"^\s+['\"]?{name}['\"]?:\s*$", text, re.M)
                or re.search(rf"^\s+set-name:\s*['\"]?{name}['\"]?\s*$", text, re.M)
                or re.search(rf"macaddress:\s*['\"]?{re.escape(mac)}['\"]?\s*$", text, re.M | re.I))


def keyfile_names(text: str, ifname: str, mac: str) -> bool:
    """Does a NetworkManager keyfile (or an ifcfg file) name this NIC?"""
    for raw in text.splitlines():
        if "=" not in raw or raw.lstrip().startswith("#"):
            continue
        key, value = (part.strip().strip("'\"") for part in raw.split("=", 1))
        if key in ("interface-name", "DEVICE") and value == ifname:
            return True
        if key in ("mac-address", "HWADDR", "LLADDR") and value.lower() == mac:
            return True
    return False


def cloud_init_findings(root: Path, mac: str, ifname: str) -> list[str]:
    """cloud-init's rendered network config naming the ENI, by renderer."""
    named = []
    netplan = root / "etc/netplan/50-cloud-init.yaml"
    if netplan_names(_read(netplan), ifname, mac):
        named.append("/etc/netplan/50-cloud-init.yaml")
    for name in ("50-cloud-init", "50-cloud-init.cfg"):
        if ifupdown_stanzas(_read(root / "etc/network/interfaces.d" / name), ifname):
            named.append(f"/etc/network/interfaces.d/{name}")
    for directory in NM_CONNECTION_DIRS:
        for path in sorted((root / directory).glob("cloud-init-*")):
            if keyfile_names(_read(path), ifname, mac):
                named.append("/" + str(path.relative_to(root)))
    for directory in ("etc/sysconfig/network-scripts", "etc/sysconfig/network"):
        path = root / directory / f"ifcfg-{ifname}"
        if "cloud-init" in _read(path):
            named.append("/" + str(path.relative_to(root)))
    if not named:
        return []
    return [f"cloud-init's network config names {ifname} ({mac}) in {', '.join(named)}: its "
            "AliYun datasource renders DHCP for every NIC the metadata lists (a DHCP lease and a "
            "default route in main through the ENI) unless the datasource's "
            f"apply_full_imds_network_config is false, as eni-agent's package sets it in "
            f"{CLOUD_CFG_DROP_IN}; with that in place, remove {ifname}'s entry there"]


def nm_profile_findings(root: Path, mac: str, ifname: str, on: bool) -> list[str]:
    """NetworkManager profiles (keyfiles, RHEL ifcfg) and SUSE wicked ifcfg files
    naming the ENI (cloud-init's own are reported by `cloud_init_findings`)."""
    found = []
    profiles = [path for directory in NM_CONNECTION_DIRS
                for path in sorted((root / directory).glob("*"))
                if not path.name.startswith("cloud-init-") and path.is_file()
                and keyfile_names(_read(path), ifname, mac)]
    rhel = root / "etc/sysconfig/network-scripts" / f"ifcfg-{ifname}"
    if rhel.is_file() and "cloud-init" not in _read(rhel):
        profiles.append(rhel)
    if profiles:
        where = ", ".join("/" + str(p.relative_to(root)) for p in profiles)
        effect = ("eni-agent's unmanaged-devices keeps NetworkManager from activating it while "
                  "keep_managers_off is on" if on else
                  "NetworkManager activates it: DHCP and a default route in main through the ENI")
        found.append(f"NetworkManager has a connection profile for {ifname} ({mac}) in {where}: "
                     f"{effect}; delete it (nmcli connection delete <name>)")
    wicked = root / "etc/sysconfig/network" / f"ifcfg-{ifname}"
    if wicked.is_file() and "cloud-init" not in _read(wicked):
        found.append(f"wicked (SUSE) configures {ifname} ({mac}) from /etc/sysconfig/network/"
                     f"ifcfg-{ifname}: eni-agent does not keep wicked off; remove that file")
    return found


def eni_findings(root: Path, mac: str, ifname: str | None, on: bool = True) -> list[str]:
    if ifname is None:
        return []
    return cloud_init_findings(root, mac, ifname) + nm_profile_findings(root, mac, ifname, on)


# -- reporting -------------------------------------------------------------------

def _all_for(paths: Paths, config, enis: Iterable) -> tuple[list[str], dict[str, list[str]]]:
    """Host-wide findings, and per ENI MAC what other tools do with it (the
    network-manager notices of coexist.py included, without the engine's)."""
    on = enabled(config)
    networkd_files = read_networkd_files(paths)
    interfaces_text = read_interfaces(paths)
    per_eni = {eni.mac: notices(eni.mac, eni.link, networkd_files, interfaces_text, (), on)
               + eni_findings(paths.root, eni.mac, eni.link, on) for eni in enis}
    return host_findings(paths.root, on), per_eni


def annotate(report, config, paths: Paths = PATHS) -> None:
    """For `status`: add the findings to the report's warnings."""
    _add_to(report, *_all_for(paths, config, report.enis))


def _add_to(report, host: list[str], per_eni: dict[str, list[str]]) -> None:
    report.warnings.extend(w for w in host if w not in report.warnings)
    for eni in report.enis:
        eni.warnings.extend(w for w in per_eni[eni.mac] if w not in eni.warnings)


class Notices:
    """Log each finding once (per ENI and message) for the daemon's life."""

    def __init__(self, paths: Paths = PATHS):
        self.paths = paths
        self.logged: dict[str, set[str]] = {}

    def log(self, config, report) -> list[str]:
        """After a reconcile: warn about every new finding (the engine's own
        per-ENI warnings included, with advice), and add the findings to the
        report, so the view the daemon publishes (`status`) shows them too."""
        host, per_eni = _all_for(self.paths, config, report.enis)
        new = []
        seen_host = self.logged.setdefault("", set())
        for finding in host:
            if finding not in seen_host:
                seen_host.add(finding)
                new.append(finding)
                log.warning("%s", finding)
        for eni in report.enis:
            seen = self.logged.setdefault(eni.mac, set())
            engine = [w for w in getattr(eni, "warnings", ()) if w not in per_eni[eni.mac]]
            found = notices(eni.mac, eni.link, {}, "", engine, enabled(config)) + per_eni[eni.mac]
            for notice in found:
                if notice not in seen:
                    seen.add(notice)
                    new.append(notice)
                    log.warning("%s: %s", eni.eni_id or eni.mac, notice)
        _add_to(report, host, per_eni)
        return new
