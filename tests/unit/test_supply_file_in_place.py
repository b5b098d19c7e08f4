"""A metadata file written in place fails to load at every write (the reader
sees it half written) and loads once it is whole: one warning, then a count at
most once a minute, not a warning per write."""

from __future__ import annotations

import logging

from eni_agent.config import Config
from eni_agent.supply import MetadataSupply

from tests.harness.documents import EXAMPLE_BYTES, write_file
from tests.harness.notifier import RecordingNotifier


def test_a_file_written_in_place_every_second_warns_once_a_minute(tmp_path, caplog):
    tmp_path.chmod(0o700)
    path = write_file(tmp_path / "metadata.json", EXAMPLE_BYTES)
    # (keep_managers_off=False: a unit test never writes the host's network-manager files)
    supply = MetadataSupply(Config(metadata=str(path), keep_managers_off=False), RecordingNotifier())
    supply.load_file(-1.0)
    with caplog.at_level(logging.DEBUG, logger="eni_agent"):
        for second in range(120):
            cut = 40 + second % 7  # torn at another offset (another JSON error) each time
            write_file(path, EXAMPLE_BYTES[:cut])
            supply.load_file(float(second))
            write_file(path, EXAMPLE_BYTES)
            supply.load_file(second + 0.5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "keeping the last good document" in warnings[0]
    assert "(60 more time(s) in the last 60s)" in warnings[1]
    assert supply.metadata is not None
