"""The periodic full resync is the safety net for drift that makes no netlink
event: promote_secondaries switched off by hand is restored at the next resync."""

from __future__ import annotations

from tests.harness.commands import get_sysctl, set_sysctls
from tests.harness.daemon import configured_daemon
from tests.harness.metadata import build_metadata, metadata_file

KEY = "net.ipv4.conf.eth1.promote_secondaries"


def test_periodic_resync_restores_promote_secondaries(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    with configured_daemon(t, tmp_path, path, resync_interval=1, configured_within=0) as d:
        assert get_sysctl(t.guest, KEY) == "1"
        set_sysctls(t.guest, {KEY: 0})  # no netlink event for this one
        took = d.wait_until(lambda: get_sysctl(t.guest, KEY) == "1", 4.0, interval=0.05,
                            what="promote_secondaries restored")
        print(f"promote_secondaries restored after {took:.2f}s (resync every 1 s)")
        d.wait_log("set promote_secondaries on eth1 (periodic resync)")
        assert d.alive()
