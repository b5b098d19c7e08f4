"""Another tool that keeps removing one of the agent's rules: the daemon
repairs at once at first, then backs off (1, 2, 4 ... s between repairs, at
most 64 s), and the warning about it is summarized instead of logged per
repair. When the tool stops, the rule is back within the last gap."""

from __future__ import annotations

import subprocess
import time


from tests.harness.expect import eni_problems
from tests.harness.prober import traffic_failures


FIGHT_FOR = 20.0
REPAIR = "add rule 10000: from 10.0.1.10"
WARNING = "state keeps being undone"


def test_repairs_of_a_rule_another_tool_keeps_removing_back_off(topology_with_eni,
                                                                daemon_with_eni):
    t, d = topology_with_eni, daemon_with_eni
    eni = t.eni("eth1")
    before = len(d.log_lines(REPAIR))
    loop = subprocess.Popen(
        ["ip", "netns", "exec", t.guest, "sh", "-c",
         "while :; do ip rule del from 10.0.1.10 priority 10000 2>/dev/null; "
         "sleep 0.1; done"])
    try:
        time.sleep(FIGHT_FOR)
    finally:
        loop.kill()
        loop.wait()
    repairs = len(d.log_lines(REPAIR)) - before
    warnings = [line for line in d.log_lines(WARNING) if " WARNING " in line]
    print(f"{repairs} repairs and {len(warnings)} warning line(s) in {FIGHT_FOR:g}s of "
          "a rule removed every 0.1 s")
    # at once until the fight is recognized (10 in 10 s), then 1+2+4+8 s apart
    assert 10 <= repairs <= 16, d.log_lines(REPAIR)
    assert 1 <= len(warnings) <= 2, warnings
    assert "repairs now at most every 1s" in warnings[0]
    took = d.wait_until(lambda: not eni_problems(t, eni), 32.0 + 5.0,
                        what="the rule repaired after the tool stopped")
    print(f"repaired {took:.1f}s after the tool stopped")
    assert traffic_failures(t, eni.ips) == []
    assert d.alive()
