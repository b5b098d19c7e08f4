"""pytest fixtures for network-namespace integration tests (tests/harness).

Every test here is marked ``integration`` and skipped without root (a failure
where integration tests are required: tests/conftest.py), except in modules
marked ``rootless``.

Fixtures:
  topology_factory  -> make(enis=(), **kwargs) -> Topology; every topology it
                       made is destroyed when the test ends (pass or fail).
  topology          -> fresh Topology with only the primary NIC (eth0).
  topology_with_eni -> fresh Topology with eth0 + make_eni(1) (eth1,
                       00:16:3e:00:01:01, 10.0.1.10 + 10.0.1.11, DOWN, unconfigured).
  daemon_with_eni   -> `eni-agent daemon` on topology_with_eni's metadata
                       document (``d.metadata``): READY=1, then eth1 configured
                       within 5 s (harness.daemon.configured_daemon). Its log
                       is printed at teardown: pytest shows it when the test
                       failed.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest

from tests.harness.commands import is_root
from tests.harness.daemon import DaemonProc, configured_daemon
from tests.harness.enis import Eni, make_eni
from tests.harness.namespaces import cleanup_stale_namespaces
from tests.harness.topology import Topology

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The preamble every integration module would repeat: the ``integration``
    mark, and a skip without root unless the module is marked ``rootless``."""
    root = is_root()
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue  # this hook sees the whole session's items
        item.add_marker(pytest.mark.integration)
        if not root and item.get_closest_marker("rootless") is None:
            item.add_marker(pytest.mark.skip(reason="network namespace tests need root"))


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


@pytest.fixture
def daemon_with_eni(topology_with_eni: Topology, tmp_path: Path) -> Iterator[DaemonProc]:
    """The daemon on topology_with_eni's metadata document, READY=1 and eth1
    configured (the opening most daemon tests share; configured_daemon's
    defaults). Stopped after the test, before the topology is torn down."""
    with configured_daemon(topology_with_eni, tmp_path) as daemon:
        yield daemon
