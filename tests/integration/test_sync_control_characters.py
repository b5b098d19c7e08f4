"""A NIC name holding control characters is printed escaped in the text
report, so it cannot drive the terminal of whoever reads it; JSON carries
the real name (escaped by JSON itself)."""

from __future__ import annotations

from tests.harness.agent import Agent
from tests.harness.enis import make_eni

NAME = "e\x1b[2J1"  # ESC [2J: clear the screen


def test_a_nic_name_with_control_characters_is_escaped_in_text(topology_factory, tmp_path):
    t = topology_factory([make_eni(1, ifname=NAME)])
    agent = Agent(t, tmp_path)
    agent.write()

    res = agent.sync()
    assert res.code == 0, str(res)
    assert "\x1b" not in res.stdout
    assert res.stdout.splitlines()[0].startswith("eni-second 00:16:3e:00:01:01 e\\x1b[2J1 table ")
    assert "  set link e\\x1b[2J1 up" in res.stdout.splitlines()

    status = agent.status("--json")
    assert status.code == 0 and status.json["enis"][0]["link"] == NAME
    text = agent.status()
    assert "\x1b" not in text.stdout and "e\\x1b[2J1" in text.stdout
