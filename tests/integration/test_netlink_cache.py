"""The daemon's picture of the kernel, kept by notifications, is the kernel's:
after every kind of change others (and the kernel itself) make, observing
through the notification-fed records gives exactly what a fresh dump gives.

Among the changes are those the kernel makes without a notification (IPv4
routes flushed when a link goes down or loses its last address) and a route
replaced in place.
"""

from __future__ import annotations

import subprocess
import sys

from tests.harness.commands import ip
from tests.harness.enis import make_eni
from tests.harness.topology import Topology

# Runs inside the guest namespace: a session following notifications, and
# after each command from stdin, its observation against a fresh dump's.
CHECKER = r"""
import subprocess, sys
from eni_agent.netlink import Netlink
follow = Netlink(234, follow=True)
follow.observe()
for line in sys.stdin:
    subprocess.run(line.split(), check=True)
    fresh = Netlink(234).observe()
    seen = follow.observe()
    print("same" if seen == fresh else f"DIFFERENT after {line.strip()}:\n  follow {seen}\n  dump   {fresh}",
          flush=True)
"""

STEPS = [
    # the agent's shapes, marked
    "ip link set eth1 up",
    "ip addr add 10.0.1.10/24 dev eth1 noprefixroute",
    "ip addr add 10.0.1.11/24 dev eth1 noprefixroute",
    "ip route add 10.0.1.0/24 dev eth1 table 10003 proto 234",
    "ip route add default via 10.0.1.253 dev eth1 onlink table 10003 proto 234",
    "ip rule add from 10.0.1.10 lookup 10003 priority 10000 protocol 234",
    "ip rule add from 10.0.1.11 lookup 10003 priority 10000 protocol 234",
    # others', and the kernel's own side effects
    "ip route replace default via 10.0.1.254 dev eth1 onlink table 10003 proto 234",
    "ip rule add from all fwmark 7 lookup 77 priority 500",
    "ip route add blackhole 10.9.0.0/16 table 10004",
    # main's foreign routes: read only as default routes (dropped undecoded otherwise)
    "ip route add 10.77.0.0/16 via 10.0.0.253",
    "ip route add default via 10.0.1.253 dev eth1 metric 500 onlink",
    "ip route replace 10.77.0.0/16 via 10.0.0.253 dev eth0",
    "ip route del default via 10.0.1.253 dev eth1 metric 500",
    "ip route del 10.77.0.0/16",
    "ip rule del from 10.0.1.11 lookup 10003 priority 10000",
    "ip addr del 10.0.1.11/24 dev eth1",
    "ip addr del 10.0.1.10/24 dev eth1",  # the last IPv4 address: its routes go silently
    "ip addr add 10.0.1.10/24 dev eth1 noprefixroute",
    "ip route add 10.0.1.0/24 dev eth1 table 10003 proto 234",
    "ip link set eth1 down",  # IPv4 routes flushed without a word
    "ip link set eth1 up",
    "ip route add 10.0.1.0/24 dev eth1 table 10003 proto 234",
    "ip link del eth1",
    "ip route del blackhole 10.9.0.0/16 table 10004",
]


def test_records_kept_by_notifications_match_a_fresh_dump(topology_factory):
    t: Topology = topology_factory([make_eni(1)])
    proc = subprocess.run(["ip", "netns", "exec", t.guest, sys.executable, "-c", CHECKER],
                          input="\n".join(STEPS) + "\n", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    verdicts = proc.stdout.splitlines()
    assert verdicts == ["same"] * len(STEPS), "\n".join(v for v in verdicts if v != "same")
    assert ip(t.guest, "link", "show", "eth1", check=False).returncode != 0  # really gone
