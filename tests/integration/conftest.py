"""pytest fixtures for network-namespace integration tests (see netns.py).

Fixtures:
  topology_factory  -> make(enis=(), **kwargs) -> Topology; every topology it
                       made is destroyed when the test ends (pass or fail).
  topology          -> fresh Topology with only the primary NIC (eth0).
  topology_with_eni -> fresh Topology with eth0 + make_eni(1) (eth1,
                       00:16:3e:00:01:01, 10.0.1.10 + 10.0.1.11, DOWN, unconfigured).
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Iterable, Iterator

import pytest

from .netns import Eni, Topology, cleanup_stale_namespaces, is_root, make_eni


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _netns_session() -> Iterator[None]:
    """Sweep ``eni-t-*`` namespaces left by crashed runs, and turn SIGTERM
    (CI timeouts) into KeyboardInterrupt so fixture finalisers still run."""
    if not is_root():
        yield
        return
    cleanup_stale_namespaces()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def topology_factory() -> Iterator[Callable[..., Topology]]:
    """Factory building fresh topologies: ``make(enis=(), **kwargs)``
    (kwargs as :meth:`Topology.create`). All are torn down after the test."""
    if not is_root():
        pytest.skip("network namespace tests need root")
    made: list[Topology] = []

    def make(enis: Iterable[Eni] = (), **kwargs: Any) -> Topology:
        topo = Topology.create(enis, **kwargs)
        made.append(topo)
        return topo

    try:
        yield make
    finally:
        errors = []
        for topo in reversed(made):
            try:
                topo.destroy()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def topology(topology_factory: Callable[..., Topology]) -> Topology:
    """Fresh topology with the primary NIC only (configured as by DHCP)."""
    return topology_factory()


@pytest.fixture
def topology_with_eni(topology_factory: Callable[..., Topology]) -> Topology:
    """Fresh topology with the primary NIC plus ENI eth1 (make_eni(1)), which
    is attached but DOWN and unconfigured."""
    return topology_factory([make_eni(1)])
