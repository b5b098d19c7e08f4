"""At rest the daemon sleeps in select(): no polling, no wake-ups."""

from __future__ import annotations

import os
import time

from tests.harness.commands import run_in
from tests.harness.daemon import run_daemon
from tests.harness.metadata import build_metadata, metadata_file

IDLE_SECONDS = 2.0


def wakeups(pid: int) -> int:
    """Context switches of all the process's threads: each time one of them
    went to sleep or was woken. A thread asleep in select() adds none, however
    busy the machine is; CPU seconds are the benchmark's figure."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            total += sum(int(line.split()[1]) for line in f
                         if line.startswith(("voluntary_ctxt_switches",
                                             "nonvoluntary_ctxt_switches")))
    return total


def test_idle_daemon_sleeps_without_waking(daemon_with_eni):
    d = daemon_with_eni
    time.sleep(0.3)  # let it handle the events of its own changes
    pid = d.python_pid()
    assert "eni_agent" in open(f"/proc/{pid}/cmdline").read()
    before, cpu, notes = wakeups(pid), d.cpu_seconds(), len(d.messages())
    time.sleep(IDLE_SECONDS)
    woke = wakeups(pid) - before
    print(f"idle for {IDLE_SECONDS}s: {woke} context switches, "
          f"{d.cpu_seconds() - cpu:.3f}s of CPU (start-up took {cpu:.2f}s)")
    assert woke <= 2  # no polling: asleep in select() until something happens
    assert len(d.messages()) == notes  # and no reconcile ran meanwhile
    assert d.alive()


def test_the_kernel_finishing_with_a_new_link_triggers_no_reconciles(topology_with_eni, tmp_path):
    """Bringing an ENI's link up sets the kernel working on it for seconds
    (IPv6 duplicate address detection of its link-local address, carrier,
    operstate), each step a netlink notification about the link. None of it
    changes what the plan reads: after the one pass that digests the echoes
    of its own changes, the daemon stays asleep."""
    t = topology_with_eni
    eth1 = t.eni("eth1").ifname
    for key in ("disable_ipv6=0", "accept_dad=1", "dad_transmits=1"):  # as on a VM
        run_in(t.guest, "sysctl", "-qw", f"net.ipv6.conf.{eth1}.{key}", check=True)
    path = metadata_file(tmp_path, build_metadata(t))
    with run_daemon(t, path, tmp_path) as d:
        d.wait_ready()
        at_ready = len(d.messages("STATUS"))
        time.sleep(3.0)  # DAD takes ~1 s per link on a veth (one probe, 1 s apart)
        passes = len(d.messages("STATUS")) - at_ready
        assert passes <= 1, [n.fields for n in d.messages("STATUS")][at_ready:]
        assert d.alive()
