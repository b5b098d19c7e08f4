"""A NIC's queues (ethtool "channels"), read and raised to their maximum.

`ethtool -L IFACE combined N` in-process, through pyroute2's SIOCETHTOOL ioctl
(ETHTOOL_GCHANNELS / ETHTOOL_SCHANNELS): pyroute2 0.9's ethtool generic-netlink
socket has no ETHTOOL_MSG_CHANNELS_* messages, and the ioctl needs no
`ethtool` binary on the image and cannot hang (the kernel answers at once).
The socket is opened in the calling process's network namespace, like the
agent's netlink socket.
"""

from __future__ import annotations

import errno
from typing import NamedTuple, Optional


class Channels(NamedTuple):
    """Queue counts: (current, maximum) per kind; a kind with maximum 0 is
    one the driver does not offer (virtio-net: combined only; veth: rx, tx)."""

    combined: int
    max_combined: int
    rx: int
    max_rx: int
    tx: int
    max_tx: int

    @property
    def at_max(self) -> bool:
        return all(now >= most for now, most in self.pairs())

    def pairs(self) -> list[tuple[int, int]]:
        return [(self.combined, self.max_combined), (self.rx, self.max_rx),
                (self.tx, self.max_tx)]

    def describe(self) -> str:
        """'4 of 4 combined' / 'rx 1 of 4, tx 1 of 4' (the kinds offered)."""
        parts = [f"{now} of {most} {kind}" if kind == "combined" else f"{kind} {now} of {most}"
                 for kind, (now, most) in zip(("combined", "rx", "tx"), self.pairs()) if most]
        return ", ".join(parts) or "not settable"


def read_channels(ifname: str) -> Optional[Channels]:
    """The NIC's queue counts; None when its driver has none to report."""
    from pyroute2.ethtool.ioctl import IoctlEthtool, NoSuchDevice, NotSupportedError

    ethtool = IoctlEthtool(ifname)
    try:
        c = ethtool.get_channels()
    except NotSupportedError:
        return None
    except NoSuchDevice:
        raise OSError(errno.ENODEV, f"{ifname}: no such device") from None
    finally:
        ethtool.close()
    return Channels(c.combined_count, c.max_combined, c.rx_count, c.max_rx, c.tx_count, c.max_tx)


def raise_channels_to_max(ifname: str) -> Channels:
    """Set every queue count the driver offers to its maximum; returns the
    counts read back. Raises OSError (ENODEV: the NIC is gone; EOPNOTSUPP)."""
    from pyroute2.ethtool.ioctl import IoctlEthtool, NoSuchDevice, NotSupportedError

    ethtool = IoctlEthtool(ifname)
    try:
        c = ethtool.get_channels()
        for now, most in (("combined_count", "max_combined"), ("rx_count", "max_rx"),
                          ("tx_count", "max_tx")):
            if c[most]:
                setattr(c, now, c[most])
        ethtool.set_channels(c)
        c = ethtool.get_channels()
    except NoSuchDevice:
        raise OSError(errno.ENODEV, f"{ifname}: no such device") from None
    except NotSupportedError:
        raise OSError(errno.EOPNOTSUPP, f"{ifname}: setting queues is not supported") from None
    finally:
        ethtool.close()
    return Channels(c.combined_count, c.max_combined, c.rx_count, c.max_rx, c.tx_count, c.max_tx)
