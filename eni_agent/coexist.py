"""Keeping the image's own network managers off the ENIs eni-agent configures.

Left alone, each manager an image may run takes a new NIC over: NetworkManager
("Wired connection N", DHCP, a main-table default route per NIC), a catch-all
systemd-networkd `.network` (`Name=en* eth*`, `DHCP=yes`), ifupdown with
`allow-hotplug ethN` / `inet dhcp` (isc-dhclient). A second default route in
`main` makes the primary's replies leave through an ENI, where the VPC drops
them. So, by default, eni-agent keeps them off the listed ENIs, by MAC:

- NetworkManager: a conf.d file marking the MACs unmanaged, then
  `nmcli general reload conf` and, for a present NIC NetworkManager still
  manages, `nmcli device set IFACE managed no`;
- systemd-networkd: a runtime `.network` per MAC with `Unmanaged=yes` in
  /run/systemd/network, named to sort before any catch-all (as
  amazon-ec2-net-utils orders its own files), then `networkctl reload`;
- udev (systemd-networkd >= 255, NetworkManager >= 1.46, older NetworkManager):
  a runtime rule setting ID_NET_MANAGED_BY=eni-agent and NM_UNMANAGED=1 on the
  listed MACs at their `add` event, so a hot-added ENI is left alone before
  either manager has read any of the files above (which stay, for older ones);
- isc-dhclient (ifupdown): an enter hook that drops routers, static routes,
  DNS and host name from a lease on a listed MAC (the list lives in
  /run/eni-agent/), so DHCP there may keep the address but never touches
  `main`'s default route. An operator's `ifdown`/`ifup` works as before.

The files under /run are gone after a reboot, and a manager starts before the
agent has read the metadata: an image whose own config takes every NIC (a
catch-all networkd .network, ifupdown stanzas) would hold DHCP on the ENIs
until then. So the MACs are also remembered in /var/lib/eni-agent, and `guard`
(eni-agent-guard.service, early at boot, before any manager starts) writes the
same files for them, with no metadata and no netlink.

Layers: `desired_files` (pure: what the files must say) -> `plan_files`
(pure: writes and removals against what is there) -> `apply` (the thin
executor, plus the managers' reload commands). `notices` says, per ENI, when
another tool still holds it and what to change; image_agents.py logs each once.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, NamedTuple

from eni_agent.errors import RuntimePathUnusable

log = logging.getLogger("eni_agent.coexist")

NM_CONF_NAME = "90-eni-agent-unmanaged.conf"
NETWORKD_PREFIX = "05-eni-agent-"  # before netplan's 10-, ec2-net-utils' 70-/80-, any 99-dhcp
DHCLIENT_HOOK_NAME = "eni-agent"
DHCLIENT_MACS_NAME = "dhclient-macs"
UDEV_RULE_NAME = "90-eni-agent-managed-by.rules"  # late: the last word on these properties
REMEMBERED_NAME = "kept-off-macs"  # read by `guard` at the next boot
MAC_LINE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
COMMAND_TIMEOUT = 10.0


class Paths(NamedTuple):
    """Where each manager keeps what eni-agent writes or reads (tests use a tmp root)."""

    nm_conf_dir: Path = Path("/etc/NetworkManager/conf.d")
    networkd_runtime_dir: Path = Path("/run/systemd/network")
    networkd_dirs: tuple[Path, ...] = (Path("/etc/systemd/network"), Path("/run/systemd/network"),
                                       Path("/usr/lib/systemd/network"), Path("/lib/systemd/network"))
    networkd_binary: tuple[Path, ...] = (Path("/lib/systemd/systemd-networkd"),
                                         Path("/usr/lib/systemd/systemd-networkd"))
    dhclient_hooks_dir: Path = Path("/etc/dhcp/dhclient-enter-hooks.d")
    udev_rules_dir: Path = Path("/run/udev/rules.d")  # runtime rules; /run/udev: udevd runs
    run_dir: Path = Path("/run/eni-agent")
    state_dir: Path = Path("/var/lib/eni-agent")  # survives a reboot, for `guard`
    interfaces: Path = Path("/etc/network/interfaces")
    sys_class_net: Path = Path("/sys/class/net")
    root: Path = Path("/")  # where image_agents.py looks for other agents' files

    @classmethod
    def under(cls, root: Path) -> Paths:
        """The same layout below `root`."""
        def rebase(p: Path) -> Path:
            return root / p.relative_to("/")
        defaults = cls()
        return cls(**{name: tuple(rebase(p) for p in value) if isinstance(value, tuple)
                      else rebase(value) for name, value in defaults._asdict().items()})


PATHS = Paths()


class Managers(NamedTuple):
    """Which managers are installed (not necessarily running)."""

    networkmanager: bool = False
    networkd: bool = False
    dhclient: bool = False
    udev: bool = False


def detect(paths: Paths = PATHS) -> Managers:
    return Managers(networkmanager=paths.nm_conf_dir.is_dir(),
                    networkd=any(p.exists() for p in paths.networkd_binary),
                    dhclient=paths.dhclient_hooks_dir.is_dir(),
                    udev=paths.udev_rules_dir.parent.is_dir())


def enabled(config) -> bool:
    """Keep the managers off the ENIs? On by default; `keep_managers_off = false`
    turns it off (`networkmanager_unmanaged = true`, the old name, keeps it on)."""
    return bool(getattr(config, "keep_managers_off", True)
                or getattr(config, "networkmanager_unmanaged", False))


# -- what the files say (pure) -------------------------------------------------

HEADER = ("# Written by eni-agent (keep_managers_off, on by default): eni-agent configures\n"
          "# these secondary ENIs; {what}. Rewritten as the metadata changes.\n")


def nm_unmanaged_text(macs: Iterable[str]) -> str:
    macs = sorted(macs)
    spec = ";".join(f"mac:{mac}" for mac in macs)
    lines = [HEADER.format(what="NetworkManager must not run DHCP on them").rstrip("\n"),
             "[keyfile]"]
    if macs:
        lines.append(f"unmanaged-devices={spec}")
    return "\n".join(lines) + "\n"


def networkd_unit_name(mac: str) -> str:
    return f"{NETWORKD_PREFIX}{mac.replace(':', '')}.network"


def networkd_unit_text(mac: str) -> str:
    # Type=ether: a VLAN or macvlan on the ENI shares its MAC and stays networkd's.
    return (HEADER.format(what="systemd-networkd must leave this one alone")
            + f"[Match]\nMACAddress={mac}\nType=ether\n\n[Link]\nUnmanaged=yes\n")


def udev_rule_text(macs: Iterable[str]) -> str:
    # Not only ACTION=="add": udev rebuilds a device's properties at every event.
    # DEVTYPE empty: a VLAN or bridge carrying the ENI's MAC stays the manager's.
    lines = [f'SUBSYSTEM=="net", ACTION!="remove", ENV{{DEVTYPE}}=="", ATTR{{address}}=="{mac}", '
             'ENV{ID_NET_MANAGED_BY}="eni-agent", ENV{NM_UNMANAGED}="1"' for mac in sorted(macs)]
    return HEADER.format(what="network managers must leave them alone").replace(
        "Rewritten", "Read at each\n# device event; rewritten") + "".join(f"{line}\n" for line in lines)


def dhclient_macs_text(macs: Iterable[str]) -> str:
    return "".join(f"{mac}\n" for mac in sorted(macs))


def dhclient_hook_text(macs_file: Path) -> str:
    """Sourced by dhclient-script before it acts on a lease (POSIX sh)."""
    return f"""\
# Written by eni-agent (keep_managers_off, on by default). dhclient-script
# sources this before it configures a lease: on a secondary ENI eni-agent
# configures (the MACs in {macs_file}), keep the address but drop the
# routers, static routes, DNS and host name, so DHCP there never touches the
# main table's default route or /etc/resolv.conf. Other NICs are untouched.
# Early in boot, before eni-agent has read the metadata (no list yet), only
# the first NIC (lowest ifindex; the primary on ECS) may set them: whichever
# lease came first would otherwise own the main table's default route.
eni_agent_drop=
if [ -n "$interface" ] && [ -r "/sys/class/net/$interface/address" ]; then
    if [ -e {macs_file} ]; then
        grep -qixF "$(cat "/sys/class/net/$interface/address")" {macs_file} && eni_agent_drop=1
    elif [ -e "/sys/class/net/$interface/device" ]; then
        eni_agent_first=
        for eni_agent_nic in /sys/class/net/*/device; do
            eni_agent_index=$(cat "${{eni_agent_nic%/device}}/ifindex")
            if [ -z "$eni_agent_first" ] || [ "$eni_agent_index" -lt "$eni_agent_first" ]; then
                eni_agent_first=$eni_agent_index
            fi
        done
        [ "$(cat "/sys/class/net/$interface/ifindex")" = "$eni_agent_first" ] || eni_agent_drop=1
    fi
fi
if [ -n "$eni_agent_drop" ]; then
    unset new_routers new_static_routes new_rfc3442_classless_static_routes
    unset new_domain_name_servers new_domain_name new_domain_search new_host_name
fi
unset eni_agent_drop eni_agent_first eni_agent_nic eni_agent_index
"""


def remembered_text(macs: Iterable[str]) -> str:
    return ("# Written by eni-agent: the secondary ENIs it kept the network managers off at\n"
            "# its last run; `eni-agent guard` keeps them off again early at the next boot.\n"
            + "".join(f"{mac}\n" for mac in sorted(macs)))


def parse_remembered(text: str) -> list[str]:
    """The MACs of a remembered list; any other line (a comment, damage) is skipped."""
    lines = (line.strip().lower() for line in text.splitlines())
    return sorted({line for line in lines if MAC_LINE.fullmatch(line)})


def desired_files(macs: Iterable[str], managers: Managers, on: bool,
                  paths: Paths = PATHS) -> dict[Path, str]:
    """Every file eni-agent keeps for these ENI MACs, by path (nothing when off)."""
    macs = sorted(set(macs))
    files: dict[Path, str] = {}
    if not on:
        return files
    if macs and any(managers):
        files[paths.state_dir / REMEMBERED_NAME] = remembered_text(macs)
    if managers.networkmanager:
        files[paths.nm_conf_dir / NM_CONF_NAME] = nm_unmanaged_text(macs)
    if managers.networkd:
        for mac in macs:
            files[paths.networkd_runtime_dir / networkd_unit_name(mac)] = networkd_unit_text(mac)
    if managers.udev and macs:
        files[paths.udev_rules_dir / UDEV_RULE_NAME] = udev_rule_text(macs)
    if managers.dhclient:
        macs_file = paths.run_dir / DHCLIENT_MACS_NAME
        files[paths.dhclient_hooks_dir / DHCLIENT_HOOK_NAME] = dhclient_hook_text(macs_file)
        files[macs_file] = dhclient_macs_text(macs)
    return files


def owned_paths(paths: Paths = PATHS) -> list[Path]:
    """The files of eni-agent's naming that exist now (what `cleanup` removes)."""
    found = [paths.nm_conf_dir / NM_CONF_NAME, paths.dhclient_hooks_dir / DHCLIENT_HOOK_NAME,
             paths.run_dir / DHCLIENT_MACS_NAME, paths.udev_rules_dir / UDEV_RULE_NAME,
             paths.state_dir / REMEMBERED_NAME]
    found += sorted(paths.networkd_runtime_dir.glob(f"{NETWORKD_PREFIX}*.network"))
    return [p for p in found if p.is_file()]


class FileChange(NamedTuple):
    path: Path
    text: str | None  # None: remove

    @property
    def manager(self) -> str:
        name = self.path.name
        if name == NM_CONF_NAME:
            return "networkmanager"
        if name.startswith(NETWORKD_PREFIX) and name.endswith(".network"):
            return "networkd"
        if name == REMEMBERED_NAME:
            return "boot guard"
        return "udev" if name == UDEV_RULE_NAME else "dhclient"


def plan_files(desired: dict[Path, str], existing: dict[Path, str]) -> list[FileChange]:
    """Writes for files missing or different, removals for ours no longer wanted."""
    changes = [FileChange(path, text) for path, text in sorted(desired.items())
               if existing.get(path) != text]
    changes += [FileChange(path, None) for path in sorted(existing) if path not in desired]
    return changes


# -- the executor ---------------------------------------------------------------

def read_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".eni-agent-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _run(*argv: str) -> subprocess.CompletedProcess | None:
    binary = shutil.which(argv[0])
    if binary is None:
        return None
    try:
        result = subprocess.run([binary, *argv[1:]], capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("%s: %s", " ".join(argv), e)
        return None
    if result.returncode != 0 and argv[:2] != ("systemctl", "is-active"):
        log.warning("%s failed (%d): %s", " ".join(argv), result.returncode,
                    " ".join(result.stderr.split())[:200])
    return result


def links_with_macs(macs: Iterable[str], sys_class_net: Path) -> list[str]:
    """The present interfaces (by name) whose MAC is one of `macs`."""
    wanted = {m.lower() for m in macs}
    names = []
    for address in sorted(sys_class_net.glob("*/address")):
        if (read_file(address) or "").strip().lower() in wanted:
            names.append(address.parent.name)
    return names


def _release_nm_devices(macs: list[str], paths: Paths) -> None:
    """`nmcli general reload conf` makes NetworkManager re-read unmanaged-devices
    for NICs that appear later; a present NIC is let go explicitly (a no-op for
    one it does not manage)."""
    _run("nmcli", "general", "reload", "conf")
    for device in links_with_macs(macs, paths.sys_class_net):
        _run("nmcli", "device", "set", device, "managed", "no")


class Applied(NamedTuple):
    changes: list[FileChange]
    failed: list[str]


def apply(config, metadata, paths: Paths = PATHS, managers: Managers | None = None,
          reload: bool = True, strict: bool = False) -> Applied:
    """Bring eni-agent's files for the managers in line with `metadata`'s ENIs
    and make each manager read them. A failure is logged (the routing matters
    more), except with `strict` (the one-shot `sync`) where a file under /run
    that cannot be written raises `RuntimePathUnusable` before the others are
    touched. Call at start, on every metadata change, on SIGHUP."""
    return apply_macs(config, [eni.mac for eni in metadata.secondary_enis], paths, managers,
                      reload, strict)


def apply_macs(config, macs: Iterable[str], paths: Paths = PATHS,
               managers: Managers | None = None, reload: bool = True,
               strict: bool = False) -> Applied:
    """`apply` for these ENI MACs (the config's `ignore_macs` left out)."""
    managers = detect(paths) if managers is None else managers
    ignored = {m.lower() for m in getattr(config, "ignore_macs", ())}
    macs = [mac for mac in macs if mac not in ignored]
    desired = desired_files(macs, managers, enabled(config), paths)
    existing = {p: read_file(p) or "" for p in owned_paths(paths)}
    runtime = (paths.run_dir, paths.networkd_runtime_dir)
    # The files under /run first: a full or read-only /run is found before the rest.
    changes = sorted(plan_files(desired, existing),
                     key=lambda c: not any(d in c.path.parents for d in runtime))
    failed, done = [], []
    for change in changes:
        try:
            if change.text is None:
                change.path.unlink()
            else:
                _write(change.path, change.text)
            done.append(change)
            log.info("%s %s", "removed" if change.text is None else "wrote", change.path)
        except FileNotFoundError:
            done.append(change)
        except OSError as e:
            if strict and any(d in change.path.parents for d in runtime):
                raise RuntimePathUnusable.from_os_error(change.path, e) from None
            failed.append(f"{change.path}: {e.strerror or e}")
            log.warning("cannot keep %s off the ENIs: %s: %s", change.manager, change.path,
                        e.strerror or e)
    touched = {c.manager for c in done}
    if reload and "networkmanager" in touched and _running("NetworkManager.service"):
        _release_nm_devices(macs if enabled(config) else [], paths)
    if reload and "networkd" in touched and _running("systemd-networkd.service"):
        _run("networkctl", "reload")
    if reload and "udev" in touched:
        _run("udevadm", "control", "--reload")  # udevd would notice within seconds anyway
    return Applied(done, failed)


def _running(unit: str) -> bool:
    """Is the manager running? Its files are written either way (it reads them
    when it starts); only a running one is asked to reload, since asking a
    stopped one over D-Bus can start it, or wait for it, for many seconds."""
    result = _run("systemctl", "is-active", "--quiet", unit)
    return result is not None and result.returncode == 0


def keep_others_off(config, metadata, strict: bool = False) -> None:
    """The daemon's and `sync`'s entry point: `apply`, where the host's network
    managers look after the links, its own network namespace. An agent in a
    namespace of its own (a container, the namespace tests) leaves the host's
    files alone: those managers never see its links."""
    from eni_agent.host import in_initial_netns

    if in_initial_netns():
        apply(config, metadata, PATHS, strict=strict)  # (PATHS looked up now: tests move it)


def guard(config, paths: Paths | None = None, strict: bool = False) -> Applied | None:
    """`eni-agent guard`: the files `apply` wrote at the last run, again, for
    the MACs it remembered (None: nothing remembered). No metadata, no netlink,
    no manager asked to reload: it runs early at boot, before the managers (they
    read the files when they start) and while udevd is busy with the boot's
    devices (it notices a new rules file by itself)."""
    paths = paths or PATHS
    text = read_file(paths.state_dir / REMEMBERED_NAME)
    if text is None:
        return None
    return apply_macs(config, parse_remembered(text), paths, reload=False, strict=strict)


def remove_all(paths: Paths | None = None) -> list[Path]:
    """For `eni-agent cleanup`: remove every file `apply` wrote; reload the managers."""
    paths = paths or PATHS
    removed = []
    for path in owned_paths(paths):
        try:
            path.unlink()
            removed.append(path)
        except OSError as e:
            log.warning("cannot remove %s: %s", path, e.strerror or e)
    names = {p.name for p in removed}
    if NM_CONF_NAME in names and _running("NetworkManager.service"):
        _run("nmcli", "general", "reload", "conf")
    if any(n.startswith(NETWORKD_PREFIX) for n in names) and _running("systemd-networkd.service"):
        _run("networkctl", "reload")
    if UDEV_RULE_NAME in names:
        _run("udevadm", "control", "--reload")
    return removed
