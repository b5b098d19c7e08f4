"""A token the service refused (normal mode) is asked for again 300 s later,
not at every fetch and not never."""

from __future__ import annotations

import pytest

from eni_agent.metadata_service import token_wanted


@pytest.mark.parametrize("now, refused_at, wanted", [
    (1000.0, None, True),  # never refused: ask
    (1000.0, 1000.0, False),  # just refused
    (1299.9, 1000.0, False),
    (1300.0, 1000.0, True),  # 300 s on: ask again
    (5000.0, 1000.0, True),
])
def test_a_refused_token_is_asked_for_again_after_300s(now, refused_at, wanted):
    assert token_wanted(now, refused_at) is wanted
