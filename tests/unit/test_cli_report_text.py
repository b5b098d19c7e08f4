"""The text report is safe on a terminal: names the kernel or the metadata
hand us are printed with control characters escaped (JSON escapes its own)."""

from __future__ import annotations

import json

import pytest

from eni_agent.engine import reconcile
from eni_agent.errors import printable
from eni_agent.report import EniState, report_json, report_text
from eni_agent.state import Link, Observed

from tests.harness.documents import SECOND_MAC, example_metadata
from tests.harness.fake_netlink import FakeNetlink
from tests.harness.observed import CONFIG, ETH0

EVIL = "eth\x1b[2J\r\n"  # clear the screen, then a line of our choosing


@pytest.mark.parametrize("text, shown", [
    ("eth1", "eth1"), ("eth\x1b[2J", "eth\\x1b[2J"), ("a\nb\tc\r", "a\\nb\\tc\\r"),
    ("\x7f\x00", "\\x7f\\x00"), ("caf\u00e9", "caf\u00e9"), ("\u202e", "\\u202e"),
])
def test_printable(text, shown):
    assert printable(text) == shown


def test_a_link_name_with_control_characters_is_escaped_in_the_text_report():
    nl = FakeNetlink(Observed(links=(ETH0, Link(3, EVIL, SECOND_MAC, False))))
    report = reconcile(nl, example_metadata(), CONFIG)
    text = report_text(report)
    assert "\x1b" not in text and "\r" not in text
    assert text.startswith(f"eni-bp1second {SECOND_MAC} eth\\x1b[2J\\r\\n table 10003: configured\n")
    assert "  set link eth\\x1b[2J\\r\\n up" in text.splitlines()
    assert all(line.isprintable() for line in text.splitlines())
    # JSON keeps the real name (escaped by JSON itself).
    assert json.loads(report_json(report))["enis"][0]["link"] == EVIL


def test_a_reason_with_control_characters_is_escaped():
    links = (ETH0, Link(3, EVIL, SECOND_MAC, True), Link(4, "eth9", SECOND_MAC, True))
    report = reconcile(FakeNetlink(Observed(links=links)), example_metadata(), CONFIG)
    (eni,) = report.enis
    assert eni.state is EniState.AMBIGUOUS
    text = report_text(report)
    assert all(line.isprintable() for line in text.splitlines())
    assert "eth\\x1b[2J\\r\\n, eth9" in text


@pytest.mark.parametrize("state", list(EniState))
def test_states_read_as_their_words_wherever_they_are_compared_or_printed(state):
    """The daemon compares `eni.state == "pending"`; logs and f-strings print it."""
    word = state.value
    assert state == word and hash(state) == hash(word) and {word: 1}[state] == 1
    assert (str(state), f"{state}", "%s" % state, json.dumps(state)) == \
        (word, word, word, f'"{word}"')


def test_plan_actions_read_as_their_words():
    from eni_agent.plan import Action

    assert [f"{a}" for a in Action] == ["up", "mtu", "keep-secondaries", "add", "replace", "remove"]


def test_log_lines_are_one_line_with_control_characters_escaped():
    import logging

    from eni_agent.log import JournalFormatter, OneLine

    record = logging.LogRecord("eni_agent", logging.INFO, __file__, 1, "link %s\nis up",
                               ("eth\x1b[2J",), None)
    assert OneLine("%(message)s").format(record) == "link eth\\x1b[2J is up"
    assert JournalFormatter("%(message)s").format(record) == "<6>link eth\\x1b[2J is up"
