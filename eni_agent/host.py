"""Facts about the host that netlink does not carry: whether udev has finished
with a link, whether the kernel keeps address marks, and which route tables
the iproute2 rt_tables files name (a user's tables)."""

from __future__ import annotations

import glob
import os
import re
import time
from typing import Dict, Set

RT_TABLES_FILES = ("/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables")
RT_TABLES_DIRS = ("/etc/iproute2/rt_tables.d", "/usr/share/iproute2/rt_tables.d")
UDEV_CONTROL = "/run/udev/control"
UDEV_DATA = "/run/udev/data"
UDEV_PATIENCE = 10.0  # seconds: after that, a link udev never finishes with is used anyway


class UdevGate:
    """Whether udev has finished with a link, as systemd-networkd decides it:
    its database entry /run/udev/data/n<ifindex> exists. Only where udev
    manages this namespace: not in a container or a namespace of its own."""

    def __init__(self):
        self.first_seen: Dict[int, float] = {}
        self.active = os.path.exists(UDEV_CONTROL) and in_initial_netns()

    def initialized(self, index: int) -> bool:
        if not self.active or os.path.exists(f"{UDEV_DATA}/n{index}"):
            self.first_seen.pop(index, None)
            return True
        first = self.first_seen.setdefault(index, time.monotonic())
        return time.monotonic() - first > UDEV_PATIENCE


# Recent kernels give the initial network namespace a fixed inode number (as
# the other initial namespaces have had since Linux 3.8); older ones number it
# like any other, so there it is told by comparing with PID 1's.
PROC_NET_INIT_INO = 0xEFFFFFF9


def in_initial_netns() -> bool:
    """The host's own network namespace: the one its udev and network managers
    look after (not a container's, not a namespace of its own)."""
    try:
        ours = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return True  # no /proc: cannot tell; assume the host's namespace
    if ours == PROC_NET_INIT_INO:
        return True
    try:
        return ours == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        # PID 1 hidden (a sandbox): a kernel that numbers the initial namespace
        # PROC_NET_INIT_INO (6.18 here) has said no already; an older one cannot say.
        return _kernel_version() < (6, 18)


def _kernel_version() -> tuple:
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(version[1]), int(version[2])) if version else (0, 0)


def kernel_marks_addresses() -> bool:
    """Whether the kernel keeps an address's protocol (IFA_PROTO, Linux 5.18+).

    Older kernels (Alibaba Cloud Linux 2's 4.19, CentOS 7's 3.10) silently
    drop it. ENI_AGENT_ADDRESS_MARKS=0/1 overrides the guess (tests use 0).
    """
    override = os.environ.get("ENI_AGENT_ADDRESS_MARKS")
    if override in ("0", "1"):
        return override == "1"
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return version is None or (int(version[1]), int(version[2])) >= (5, 18)


def kernel_has_altnames() -> bool:
    """Whether the kernel takes interface altnames (RTM_NEWLINKPROP, Linux 5.5+).
    ENI_AGENT_ALTNAMES=0/1 overrides the guess (tests)."""
    override = os.environ.get("ENI_AGENT_ALTNAMES")
    if override in ("0", "1"):
        return override == "1"
    version = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return version is None or (int(version[1]), int(version[2])) >= (5, 5)


def named_tables() -> Set[int]:
    """Table ids that an rt_tables file gives a name to (a user's tables)."""
    paths = list(RT_TABLES_FILES)
    for directory in RT_TABLES_DIRS:
        paths.extend(sorted(glob.glob(f"{directory}/*.conf")))
    tables = set()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()  # whole: a table named past a cut stays named
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2:
                try:
                    tables.add(int(fields[0], 16 if fields[0].lower().startswith("0x") else 10))
                except ValueError:
                    continue
    return tables - {0, 253, 254, 255}
