"""Failover: an ENI moved to this instance shows up as a NIC, usually before
the metadata service lists it. The daemon then fetches in a burst (0.25 s
doubling to 1 s, for up to a minute) until the listing names the NIC, so the
ENI is configured within 2 s of the service listing it, not at the next poll
(60 s here). NICs that cannot be ENIs (locally administered MACs: veths,
bridges) or that the config ignores start no burst, and a burst for a NIC
the service never lists ends after a minute.
"""

from __future__ import annotations

import time

import pytest

from tests.harness.commands import ip
from tests.harness.daemon import daemon_for
from tests.harness.enis import make_eni
from tests.harness.expect import eni_problems
from tests.harness.kernel import describe
from tests.harness.metadata import build_metadata
from tests.harness.metadata_service import serve_metadata
from tests.harness.prober import traffic_failures

POLL = 60  # the regular poll: far beyond every limit below
LISTED_LIMIT = 2.0  # listing -> configured, NIC first (issue 12 §2)
BURST_FOR = 60.0  # daemon.BURST_FOR
BUSY = 10.0
POLLING = {"metadata_interval": POLL, "resync_interval": None}  # no --resync-interval: the daemon's default


def configured_after(t, d, name: str, start: float, limit: float) -> float:
    d.wait_until(lambda: not eni_problems(t, t.eni(name)), limit + BUSY,
                 what=f"{name} configured")
    return time.monotonic() - start


@pytest.mark.parametrize("all_mode", ["thin", "complete"])
def test_nic_first_then_listed_3s_later_is_configured_within_2s(
        topology_factory, tmp_path, all_mode):
    t = topology_factory([make_eni(1)])
    eni2 = make_eni(2)
    with serve_metadata(t, tmp_path, all=all_mode) as svc, \
            daemon_for(t, svc, tmp_path, **POLLING) as d:
        d.wait_ready(timeout=30)
        time.sleep(2.5)  # the start-up fetch is long past
        mark = svc.mark()
        t.add_eni(eni2)  # the NIC appears; the service does not list it yet
        time.sleep(3)
        bursting = len(svc.fetches(mark))
        assert bursting >= 3, f"{bursting} fetches in the 3 s before the listing\n{svc.show()}"
        assert eni_problems(t, t.eni("eth2")) != []
        listed = time.monotonic()
        svc.set_document(build_metadata(t, enis=[t.eni("eth1"), eni2]))
        took = configured_after(t, d, "eth2", listed, LISTED_LIMIT)
        print(f"NIC first, listed 3 s later: configured {took:.2f}s after the listing "
              f"({bursting} fetches while unlisted)")
        assert took < LISTED_LIMIT, describe(t)
        assert traffic_failures(t, t.eni("eth2").ips) == []
        # listed: the burst is over
        mark = svc.mark()
        time.sleep(4)
        assert len(svc.fetches(mark)) <= 1, svc.show()


def test_listed_first_then_nic_is_configured_promptly(topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    eni2 = make_eni(2)
    with serve_metadata(t, tmp_path) as svc, daemon_for(t, svc, tmp_path, **POLLING) as d:
        d.wait_ready(timeout=30)
        time.sleep(2.5)
        svc.set_document(build_metadata(t, enis=[t.eni("eth1"), eni2]))
        plugged = time.monotonic()
        t.add_eni(eni2)
        took = configured_after(t, d, "eth2", plugged, LISTED_LIMIT)
        print(f"listed first, NIC after: configured {took:.2f}s after the NIC appeared")
        assert took < LISTED_LIMIT, describe(t)
        assert traffic_failures(t, t.eni("eth2").ips) == []


def test_no_burst_for_nics_that_cannot_be_enis_and_one_minute_for_an_unlisted_one(
        topology_factory, tmp_path):
    t = topology_factory([make_eni(1)])
    ignored_mac = "00:16:3e:00:77:01"
    with serve_metadata(t, tmp_path) as svc, \
            daemon_for(t, svc, tmp_path, **POLLING,
                       extra_config=f'ignore_macs = ["{ignored_mac}"]\n') as d:
        d.wait_ready(timeout=30)
        time.sleep(2.5)
        # a veth-like NIC (locally administered MAC) and an ignored one; and an
        # ENI the service lists whose NIC never appears
        mark = svc.mark()
        ip(t.guest, "link", "add", "vethx", "address", "0a:58:0a:f4:00:01", "type", "veth",
           "peer", "name", "vethy")
        ip(t.guest, "link", "add", "ignored0", "address", ignored_mac, "type", "veth",
           "peer", "name", "ignored1")  # (a veth peer gets a random local MAC)
        svc.set_document(build_metadata(t, enis=[t.eni("eth1"), make_eni(5)]))
        time.sleep(5)
        quiet = svc.fetches(mark)
        assert len(quiet) <= 2, f"{len(quiet)} fetches\n{svc.show()}"

        # a NIC with an ENI's kind of MAC that the service never lists: a
        # burst, which ends after a minute
        mark = svc.mark()
        appeared = time.monotonic()
        ip(t.guest, "link", "add", "stray0", "address", "00:16:3e:00:66:01", "type", "veth",
           "peer", "name", "stray1")
        time.sleep(5)
        burst = len(svc.fetches(mark))
        assert burst >= 5, f"{burst} fetches in 5 s\n{svc.show()}"
        time.sleep(max(0.0, appeared + BURST_FOR + 3 - time.monotonic()))
        mark = svc.mark()
        time.sleep(5)
        after = len(svc.fetches(mark))
        print(f"fetches: {len(quiet)} for ignored/veth NICs in 5 s; {burst} in the first 5 s "
              f"of a burst; {after} in 5 s after it")
        assert after <= 1, svc.show()  # at most the regular poll
        assert d.alive()
