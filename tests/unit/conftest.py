"""Unit tests run in the host's own network namespace, where `sync` and the
daemon would write the files that keep the host's network managers off the
ENIs (/run/systemd/network, NetworkManager's conf.d, the dhclient hook): every
unit test gets a scratch root for them instead."""

from __future__ import annotations

import pytest

from eni_agent import coexist


@pytest.fixture(autouse=True)
def _network_manager_files_in_a_scratch_root(tmp_path, monkeypatch):
    monkeypatch.setattr(coexist, "PATHS", coexist.Paths.under(tmp_path / "host"))
