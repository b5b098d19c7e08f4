"""The one adapter between eni-agent and the kernel's rtnetlink, on pyroute2.

Everything that speaks netlink lives in this package, and pyroute2 does all of
it; the rest of the agent sees `observe() -> Observed` and
`apply(changes) -> [Result]`:
  messages  changes -> pyroute2 request messages; decoded messages -> records
  session   `Netlink`: dumps, batched requests, notifications for the daemon
  events    notifications -> records and `Event`s
  outcomes  netlink error codes -> meanings (`Outcome`)
What the agent owns among the records is decided by `eni_agent.ownership`.
pyroute2 is imported on first use (never for `--help`).
"""

from __future__ import annotations

from eni_agent.netlink.outcomes import Kind, Outcome, Result

__all__ = ["Event", "Kind", "Netlink", "Outcome", "Result", "link_state"]


def __getattr__(name: str):
    """The pyroute2-backed parts, imported when first asked for."""
    if name == "Netlink":
        from eni_agent.netlink.session import Netlink

        return Netlink
    if name in ("Event", "link_state"):
        from eni_agent.netlink import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
