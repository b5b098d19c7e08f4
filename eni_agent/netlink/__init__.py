"""The one adapter between eni-agent and the kernel's rtnetlink.

Everything that speaks netlink lives in this package; the rest of the agent
sees `observe() -> Observed` and `apply(changes) -> [Result]`:
  wire      the message formats (structs, attributes) the agent uses
  raw       the default backend: plain socket, requests batched per send
  pyroute   the reference backend on pyroute2's IPRoute (ENI_AGENT_NETLINK=pyroute2)
  events    notifications for the daemon
Netlink error codes become meanings in `common.classify`: already present
(EEXIST), already gone (ESRCH routes, ENOENT rules, EADDRNOTAVAIL addresses),
link gone (ENODEV). pyroute2 is imported only if its backend is chosen.
"""

from __future__ import annotations

import os

from eni_agent.netlink.common import Outcome, Result, named_tables

__all__ = ["Event", "EventSocket", "Netlink", "Outcome", "Result", "link_state", "named_tables"]


def __getattr__(name: str):
    """The daemon's event classes, imported when first asked for (a one-shot
    run never is)."""
    if name in ("Event", "EventSocket", "link_state"):
        from eni_agent.netlink import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def Netlink(protocol: int, backend: str | None = None):  # noqa: N802 (a factory, used like a class)
    """A netlink session in the current network namespace."""
    backend = backend or os.environ.get("ENI_AGENT_NETLINK", "raw")
    if backend == "pyroute2":
        from eni_agent.netlink.pyroute import PyRoute2Netlink

        return PyRoute2Netlink(protocol)
    from eni_agent.netlink.raw import RawNetlink

    return RawNetlink(protocol)
