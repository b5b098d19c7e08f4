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

from tests.harness.documents import EXAMPLE_BYTES, assert_one_line, write_file

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


# -- only regular files are read, and nothing blocks ---------------------------------------

def expect_not_a_file(path: Path, kind: str) -> None:
    from eni_agent.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        read_trusted(path, "metadata")
    assert info.value.exit_code == ExitCode.INVALID_INPUT == 4
    assert info.value.message == f"metadata {path}: cannot read: is {kind}, not a regular file"


def test_a_fifo_is_refused_at_once_without_waiting_for_a_writer(tmp_path):
    import signal

    fifo = safe_dir(tmp_path) / "m.json"
    os.mkfifo(fifo, 0o600)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("read_trusted blocked on a FIFO"))
    signal.alarm(5)
    try:
        expect_not_a_file(fifo, "a FIFO")
    finally:
        signal.alarm(0)


def test_a_fifo_swapped_in_after_the_first_look_is_refused_without_blocking(tmp_path, monkeypatch):
    """The race: a regular file at the first stat, a FIFO by the open."""
    import signal

    from eni_agent import files

    fifo = safe_dir(tmp_path) / "m.json"
    os.mkfifo(fifo, 0o600)
    regular = write_file(tmp_path / "regular.json", EXAMPLE_BYTES)
    real_stat = os.stat
    monkeypatch.setattr(files.os, "stat",
                        lambda p, *a, **k: real_stat(regular if p == fifo else p, *a, **k))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("read_trusted blocked on a FIFO"))
    signal.alarm(5)
    try:
        expect_not_a_file(fifo, "a FIFO")
    finally:
        signal.alarm(0)


def test_a_device_is_refused_without_being_opened(monkeypatch):
    from eni_agent import files

    def no_open(*args, **kwargs):
        raise AssertionError("a device was opened")
    monkeypatch.setattr(files.os, "open", no_open)
    expect_not_a_file(Path("/dev/null"), "a character device")


def test_a_directory_is_refused(tmp_path):
    expect_not_a_file(safe_dir(tmp_path), "a directory")


def test_a_file_this_user_may_not_read_is_permission_denied(tmp_path, monkeypatch):
    """Root reads anything, so the refusal of the kernel is simulated."""
    from eni_agent import files

    path = write_file(safe_dir(tmp_path) / "m.json", EXAMPLE_BYTES)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(files.os, "open", denied)
    with pytest.raises(PermissionDenied) as info:
        read_trusted(path, "metadata")
    assert info.value.message == f"metadata {path}: cannot read: Permission denied (not root?)"


# -- a symlink's own owner counts ------------------------------------------------------------

@needs_root
def test_symlink_owned_by_another_user_in_a_sticky_directory_is_refused(tmp_path):
    """/tmp/m.json -> /etc/...: whoever owns the link in /tmp can replace it."""
    target = write_file(safe_dir(tmp_path, "safe", 0o755) / "m.json", EXAMPLE_BYTES)
    link = safe_dir(tmp_path, "tmp", 0o1777) / "m.json"
    link.symlink_to(target)
    os.lchown(link, 12345, 12345)
    expect_refused(link, f"symlink {link} is owned by uid 12345")


@needs_root
def test_symlink_owned_by_root_in_a_sticky_directory_is_read(tmp_path):
    target = write_file(safe_dir(tmp_path, "safe", 0o755) / "m.json", EXAMPLE_BYTES)
    link = safe_dir(tmp_path, "tmp", 0o1777) / "m.json"
    link.symlink_to(target)
    assert read_trusted(link, "metadata") == EXAMPLE_BYTES


@needs_root
def test_a_link_in_the_middle_of_a_chain_is_checked_too(tmp_path):
    """safe/m.json -> tmp/hop -> safe/real.json: the hop is on neither the
    path as given nor the resolved path."""
    safe = safe_dir(tmp_path, "safe", 0o755)
    target = write_file(safe / "real.json", EXAMPLE_BYTES)
    hop = safe_dir(tmp_path, "tmp", 0o1777) / "hop"
    hop.symlink_to(target)
    os.lchown(hop, 12345, 12345)
    link = safe / "m.json"
    link.symlink_to(hop)
    expect_refused(link, f"symlink {hop} is owned by uid 12345")


def test_a_link_in_the_middle_of_a_chain_in_an_open_directory_is_refused(tmp_path):
    safe = safe_dir(tmp_path, "safe", 0o755)
    target = write_file(safe / "real.json", EXAMPLE_BYTES)
    hop = safe_dir(tmp_path, "open", 0o777) / "hop"
    hop.symlink_to(target)
    link = safe / "m.json"
    link.symlink_to(hop)
    expect_refused(link, "its directory", "open")


def test_a_symlinked_directory_owned_by_another_user_is_refused(tmp_path):
    safe = safe_dir(tmp_path, "safe", 0o755)
    write_file(safe / "m.json", EXAMPLE_BYTES)
    sticky = safe_dir(tmp_path, "tmp", 0o1777)
    (sticky / "dir").symlink_to(safe)
    if os.geteuid() == 0:
        os.lchown(sticky / "dir", 12345, 12345)
        expect_refused(sticky / "dir" / "m.json", f"symlink {sticky / 'dir'} is owned by uid 12345")
    else:
        assert read_trusted(sticky / "dir" / "m.json", "metadata") == EXAMPLE_BYTES


def test_relative_links_and_dot_dot_resolve_like_the_kernel(tmp_path):
    safe = safe_dir(tmp_path, "safe", 0o755)
    inner = safe_dir(safe, "inner", 0o755)
    write_file(safe / "m.json", EXAMPLE_BYTES)
    (inner / "up").symlink_to("..")
    (inner / "m.json").symlink_to("up/./m.json")
    assert read_trusted(inner / "m.json", "metadata") == EXAMPLE_BYTES


def test_a_symlink_loop_is_an_os_error(tmp_path):
    safe = safe_dir(tmp_path, "safe", 0o755)
    (safe / "a").symlink_to("b")
    (safe / "b").symlink_to("a")
    with pytest.raises(OSError):
        read_trusted(safe / "a", "metadata")
