"""The apply lock when this user may not take it: exit 6, one line (not a
PermissionError turned into an internal error)."""

from __future__ import annotations

import pytest

from eni_agent import lock
from eni_agent.errors import ExitCode, PermissionDenied
from eni_agent.lock import apply_lock


def test_a_lock_this_user_may_not_create_is_permission_denied(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(lock.os, "open", denied)
    path = str(tmp_path / "apply.lock")
    with pytest.raises(PermissionDenied) as info, apply_lock(path):
        pass
    assert info.value.exit_code == ExitCode.PERMISSION == 6
    assert info.value.message == (f"cannot take the lock {path}: Permission denied; changing "
                                  "the routing needs root")


def test_the_lock_is_taken_where_allowed(tmp_path):
    with apply_lock(str(tmp_path / "run" / "apply.lock")):
        assert (tmp_path / "run" / "apply.lock").exists()
