"""A warning that keeps coming is logged once, then as a count at most once a
minute; after the condition ends, its next occurrence is a first one."""

from __future__ import annotations

import logging

from eni_agent.daemon_log import Repeats, warn_summarized


def test_a_repeated_warning_is_counted_at_most_once_a_minute():
    r = Repeats()
    said = [(t, r.note("fight", float(t))) for t in range(0, 150, 5)]
    assert [(t, n) for t, n in said if n is not None] == [(0, 0), (60, 12), (120, 12)]


def test_a_warning_ended_and_back_is_said_in_full_again():
    r = Repeats()
    assert r.note("metadata", 0.0) == 0
    assert r.note("metadata", 1.0) is None
    r.forget("metadata")
    assert r.note("metadata", 2.0) == 0


def test_two_minutes_of_a_warning_every_second_are_three_lines(caplog):
    r = Repeats()
    with caplog.at_level(logging.WARNING, logger="eni_agent.daemon"):
        for t in range(120):
            warn_summarized(r, "metadata", float(t), "metadata m.json: invalid JSON")
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert lines == ["metadata m.json: invalid JSON",
                     "metadata m.json: invalid JSON (60 more time(s) in the last 60s)"]
