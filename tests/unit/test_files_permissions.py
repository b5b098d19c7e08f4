"""Config and metadata files others could change are refused (exit code 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import eni_agent.config as config_module
from eni_agent.config import load_config
from eni_agent.errors import ExitCode, MetadataUnavailable, PermissionDenied
from eni_agent.files import read_trusted
from eni_agent.sources import load_metadata

from ._helpers import EXAMPLE_BYTES, assert_one_line, write_file

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def safe_dir(parent: Path, name: str = "safe", mode: int = 0o755) -> Path:
    path = parent / name
    path.mkdir()
    os.chmod(path, mode)  # mkdir's mode is filtered by the umask; chmod is not
    return path


def expect_refused(path: Path, *needles: str) -> str:
    with pytest.raises(PermissionDenied) as info:
        read_trusted(path, "metadata")
    assert info.value.exit_code == ExitCode.PERMISSION == 6
    assert_one_line(info.value.message)
    for needle in (str(path), *needles):
        assert needle in info.value.message
    return info.value.message


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400, 0o444, 0o755, 0o700])
def test_file_not_writable_by_others_is_read(tmp_path, mode):
    path = write_file(safe_dir(tmp_path) / "m.json", EXAMPLE_BYTES, mode)
    assert read_trusted(path, "metadata") == EXAMPLE_BYTES


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602, 0o660, 0o622, 0o777, 0o4622])
def test_file_writable_by_group_or_others_is_refused(tmp_path, mode):
    path = write_file(safe_dir(tmp_path) / "m.json", EXAMPLE_BYTES, mode)
    expect_refused(path, "writable by group or others", f"mode {mode & 0o7777:04o}")


@pytest.mark.parametrize("dir_mode", [0o777, 0o775, 0o757, 0o730, 0o703])
def test_directory_writable_by_others_without_sticky_bit_is_refused(tmp_path, dir_mode):
    path = write_file(safe_dir(tmp_path, "open", dir_mode) / "m.json", EXAMPLE_BYTES)
    expect_refused(path, "its directory", "can be changed by other users")


@pytest.mark.parametrize("dir_mode", [0o1777, 0o1775, 0o1733])
def test_sticky_world_writable_directory_is_accepted(tmp_path, dir_mode):
    path = write_file(safe_dir(tmp_path, "tmp", dir_mode) / "m.json", EXAMPLE_BYTES)
    assert read_trusted(path, "metadata") == EXAMPLE_BYTES


@needs_root
def test_file_owned_by_another_user_is_refused(tmp_path):
    path = write_file(safe_dir(tmp_path) / "m.json", EXAMPLE_BYTES)
    os.chown(path, 12345, 0)
    expect_refused(path, "owned by uid 12345")


@needs_root
def test_directory_owned_by_another_user_is_refused(tmp_path):
    directory = safe_dir(tmp_path)
    path = write_file(directory / "m.json", EXAMPLE_BYTES)
    os.chown(directory, 12345, 0)
    expect_refused(path, "its directory")


def test_file_read_through_a_symlink_is_checked_where_it_lives(tmp_path):
    target = write_file(safe_dir(tmp_path, "open", 0o777) / "m.json", EXAMPLE_BYTES)
    link = safe_dir(tmp_path) / "m.json"
    link.symlink_to(target)
    expect_refused(link, "its directory")


def test_symlink_in_world_writable_directory_is_refused(tmp_path):
    target = write_file(safe_dir(tmp_path, "safe", 0o700) / "m.json", EXAMPLE_BYTES)
    link = safe_dir(tmp_path, "open", 0o777) / "m.json"
    link.symlink_to(target)
    expect_refused(link)


def test_directory_inside_world_writable_directory_is_refused(tmp_path):
    open_dir = safe_dir(tmp_path, "open", 0o777)
    path = write_file(safe_dir(open_dir, "inner", 0o700) / "m.json", EXAMPLE_BYTES)
    expect_refused(path)


# -- the same refusal through the two readers -------------------------------------------

def test_loose_config_file_is_permission_denied(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    path = write_file(tmp_path / "config.toml", "table_base = 20000\n", 0o666)
    with pytest.raises(PermissionDenied) as info:
        load_config(path)
    assert info.value.exit_code == 6


def test_loose_default_config_file_is_permission_denied(tmp_path, monkeypatch):
    path = write_file(tmp_path / "config.toml", "table_base = 20000\n", 0o620)
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", path)
    with pytest.raises(PermissionDenied):
        load_config(None)


def test_loose_metadata_file_is_permission_denied(tmp_path):
    path = write_file(tmp_path / "m.json", EXAMPLE_BYTES, 0o666)
    with pytest.raises(PermissionDenied) as info:
        load_metadata(str(path))
    assert info.value.exit_code == 6


def test_missing_metadata_file_is_unavailable(tmp_path):
    with pytest.raises(MetadataUnavailable) as info:
        load_metadata(str(tmp_path / "absent.json"))
    assert info.value.exit_code == ExitCode.METADATA_UNAVAILABLE == 5
    assert_one_line(info.value.message)


def test_metadata_file_over_the_size_limit_is_invalid(tmp_path):
    from eni_agent.errors import InvalidInput
    from eni_agent.files import MAX_FILE_BYTES

    path = write_file(tmp_path / "m.json", EXAMPLE_BYTES + b" " * MAX_FILE_BYTES)
    with pytest.raises(InvalidInput, match="larger than"):
        load_metadata(str(path))
