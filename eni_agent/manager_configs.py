"""Who else holds an ENI: the image's own network-manager configs (networkd
.network files, ifupdown's interfaces) read for a listed ENI's name or MAC, and
the notices telling the operator what each will do to it. Read only."""

from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path
from typing import Iterable

from eni_agent.coexist import PATHS, Paths, networkd_unit_name, read_file

def parse_networkd_match(text: str) -> dict[str, list[str]]:
    """The [Match] section of a .network file: key -> values (space-separated
    lists joined across repeated keys; an empty assignment resets the key)."""
    match: dict[str, list[str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section != "Match" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value == "":
            match.pop(key, None)
        else:
            match.setdefault(key, []).extend(value.split())
    return match


def networkd_matches(match: dict[str, list[str]], ifname: str, mac: str) -> bool:
    """Would a .network with this [Match] take the link? Only Name= (globs,
    `!` negation), MACAddress= and PermanentMACAddress= are judged; a file
    with other keys is taken to match nothing it cannot show it matches."""
    judged = {"Name", "MACAddress", "PermanentMACAddress", "Type", "Driver", "Path"}
    if set(match) - judged:
        return False
    for key in ("Name",):
        if key in match and not _globs_match(match[key], ifname):
            return False
    for key in ("MACAddress", "PermanentMACAddress"):
        if key in match and mac.lower() not in {v.lower() for v in match[key]}:
            return False
    if "Type" in match and not _globs_match(match["Type"], "ether"):
        return False
    return True


def _globs_match(patterns: list[str], value: str) -> bool:
    negated = bool(patterns) and patterns[0].startswith("!")
    if negated:
        patterns = [patterns[0][1:]] + patterns[1:]
        return not any(fnmatch.fnmatchcase(value, p) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def first_networkd_file(files: dict[str, str], ifname: str, mac: str) -> str | None:
    """The file networkd applies to the link: the first matching one by file
    name (`files`: file name -> text, one per name, /etc over /run over /lib)."""
    for name in sorted(files):
        if name.endswith(".network") and networkd_matches(parse_networkd_match(files[name]),
                                                           ifname, mac):
            return name
    return None


def ifupdown_stanzas(text: str, ifname: str) -> list[str]:
    """The lines of an /etc/network/interfaces text that bring `ifname` up."""
    found = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] in ("auto", "allow-hotplug") and ifname in words[1:]:
            found.append(" ".join(words))
        elif len(words) >= 4 and words[0] == "iface" and words[1] == ifname \
                and words[3] in ("dhcp", "static", "manual"):
            found.append(" ".join(words))
    return found


def notices(mac: str, ifname: str | None, networkd_files: dict[str, str],
            interfaces_text: str, engine_warnings: Iterable[str] = (),
            on: bool = True) -> list[str]:
    """What another tool does with this ENI, each with what to change (pure).

    `engine_warnings`: the reconcile's own findings for the ENI (an address or a
    main-table default route another tool added), passed through with advice."""
    if ifname is None:
        return []
    found = []
    for warning in engine_warnings:
        found.append(f"{warning}: keep that tool off {ifname} ({mac}); eni-agent gives the ENI its "
                     "addresses and routes it through its own table")
    ours = networkd_unit_name(mac)
    first = first_networkd_file(networkd_files, ifname, mac)
    if first is not None and first != ours:
        found.append(f"systemd-networkd applies {first} to {ifname} ({mac}): match only the "
                     "primary NIC there (MACAddress= of the primary, or netplan's "
                     "match: macaddress), or leave keep_managers_off on")
    stanzas = ifupdown_stanzas(interfaces_text, ifname)
    if stanzas:
        advice = ("remove them from /etc/network/interfaces" if not on else
                  "eni-agent's dhclient hook keeps DHCP there off the main table; remove them "
                  "from /etc/network/interfaces to leave the ENI to eni-agent alone")
        found.append(f"ifupdown brings {ifname} ({mac}) up ({'; '.join(stanzas)}): "
                     f"`systemctl restart networking` then takes {ifname} down and up again "
                     "(ifdown, ifup): its routes are gone for the seconds that takes, until "
                     f"eni-agent restores them as the link comes back; {advice}")
    return found


def read_networkd_files(paths: Paths = PATHS) -> dict[str, str]:
    """Every .network networkd would read, by name (/etc masks /run masks /lib)."""
    files: dict[str, str] = {}
    for directory in paths.networkd_dirs:
        for path in sorted(glob.glob(str(directory / "*.network"))):
            name = os.path.basename(path)
            if name not in files:
                files[name] = read_file(Path(path)) or ""
    return files


def read_interfaces(paths: Paths = PATHS) -> str:
    """/etc/network/interfaces with its `source` files appended (one level)."""
    text = read_file(paths.interfaces) or ""
    parts = [text]
    for raw in text.splitlines():
        words = raw.split()
        if len(words) == 2 and words[0] in ("source", "source-directory"):
            pattern = words[1] if os.path.isabs(words[1]) else str(paths.interfaces.parent /
                                                                   words[1])
            if words[0] == "source-directory":
                pattern = os.path.join(pattern, "*")
            for path in sorted(glob.glob(pattern)):
                parts.append(read_file(Path(path)) or "")
    return "\n".join(parts)
