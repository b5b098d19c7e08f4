"""The session's route lookups (the verification's questions) answer as the
kernel routes, and a daemon's session asks the kernel again only once
something changed: a rule, a route, or the local table's routes (whose
notifications are dropped undecoded)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness.enis import make_eni
from tests.harness.topology import Topology

pytestmark = pytest.mark.integration

# Runs inside the guest namespace: after each step from stdin, the answer to
# "from 10.0.1.10 to 203.0.113.1" and the local routes of eth1, and whether
# the kernel was asked (a request's sequence number used) or the answers kept.
CHECKER = r"""
import itertools, subprocess, sys
from ipaddress import ip_address
from eni_agent.netlink import Netlink
nl = Netlink(234, follow=True)
question = (ip_address("10.0.1.10"), ip_address("203.0.113.1"))
eth1 = next(l.index for l in nl.observe().links if l.name == "eth1")
for line in sys.stdin:
    if line.strip() != "nothing":
        subprocess.run(line.split(), check=True)
    nl.observe()
    before = next(nl.seq)
    (answer,) = nl.route_lookups([question])
    count = nl.local_route_count(eth1)
    asked = next(nl.seq) - before > 1
    print(f"oif={answer.oif} table={answer.table} local={count} asked={asked}", flush=True)
"""

STEPS = [
    ("ip link set eth1 up", "asked"),
    ("ip addr add 10.0.1.10/24 dev eth1 noprefixroute", "asked"),
    ("ip route add default via 10.0.1.253 dev eth1 onlink table 10003 proto 234", "asked"),
    ("ip rule add from 10.0.1.10 lookup 10003 priority 10000 protocol 234", "asked"),
    ("nothing", "kept"),
    ("ip rule add priority 100 from all lookup main", "asked"),
    ("nothing", "kept"),
    ("ip route del local 10.0.1.10 dev eth1 table local", "asked"),
]


def test_answers_are_the_kernels_and_kept_until_something_changes(topology_factory):
    t: Topology = topology_factory([make_eni(1)])
    proc = subprocess.run(["ip", "netns", "exec", t.guest, sys.executable, "-c", CHECKER],
                          input="\n".join(step for step, _ in STEPS) + "\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.endswith("asked=True") for line in lines] == \
        [what == "asked" for _, what in STEPS], lines
    assert lines[0].startswith("oif=None"), lines  # 10.0.1.10 is no address of this host yet
    eth0_oif = lines[1].split()[0]  # main's default route, through the primary
    assert lines[3].split()[0] != eth0_oif, lines  # the ENI's rule took over
    assert "table=10003" in lines[3] and "local=1" in lines[3], lines
    assert lines[5].startswith(eth0_oif) and "table=254" in lines[5], lines  # main first now
    assert "local=0" in lines[7], lines
