"""Hot-plugged ENIs like the image's own NICs (opt-in, config `mtu`, `queues`).

Alibaba's boot-time scripts set the primary's MTU (8500 on jumbo-frame
families) and raise its queue count (`ethtool -L ethN combined N`); they never
see an ENI attached later. `mtu` goes through the plan like any link change
(desired.py, plan.py). Queues are not rtnetlink state: `queue_outcomes` reads
each configured ENI's NIC (and raises its queues, when applying) and says what
the report shows.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from eni_agent.config import Config
from eni_agent.desired import Desired, Match


class QueueOutcome(NamedTuple):
    shown: str  # "4 of 4 combined"
    change: str = ""  # done (applying) or needed (status, dry run)
    error: str = ""


def queue_outcomes(desired: Desired, config: Config, apply: bool,
                   read: Optional[Callable] = None,
                   raise_to_max: Optional[Callable] = None) -> dict[str, QueueOutcome]:
    """Per matched ENI's MAC, with `queues = "max"`: its queue counts, raised
    to the driver's maximum when `apply` (`read`, `raise_to_max`: the
    adapter's functions by default)."""
    if config.queues is None:
        return {}
    if read is None or raise_to_max is None:
        from eni_agent.netlink.channels import raise_channels_to_max, read_channels

        read, raise_to_max = read_channels, raise_channels_to_max
    outcomes = {}
    for d in desired.enis:
        if d.match is not Match.MATCHED or d.link is None:
            continue
        name = d.link.name
        try:
            channels = read(name)
            if channels is None:
                outcomes[d.eni.mac] = QueueOutcome("not settable (the driver reports none)")
            elif channels.at_max:
                outcomes[d.eni.mac] = QueueOutcome(channels.describe())
            elif not apply:
                outcomes[d.eni.mac] = QueueOutcome(channels.describe(),
                                                   f"raise the queues of {name} to their maximum")
            else:
                after = raise_to_max(name)
                outcomes[d.eni.mac] = QueueOutcome(after.describe(),
                                                   f"set queues of {name} to {after.describe()}")
        except OSError as e:
            outcomes[d.eni.mac] = QueueOutcome("unknown", error=f"queues of {name}: "
                                                                f"{e.strerror or e}")
    return outcomes
