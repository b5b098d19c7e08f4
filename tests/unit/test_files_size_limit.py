"""A config or metadata file over 1 MiB is refused whole (exit 4, one line),
never read in part: a setting past the cut (an `ignore_macs`, a `metadata =`)
used to be silently dropped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eni_agent import host
from eni_agent.config import load_config
from eni_agent.errors import InvalidInput
from eni_agent.sources import load_metadata

from tests.harness.commands import REPO
from tests.harness.documents import EXAMPLE_BYTES, THIRD_MAC, assert_one_line, write_file

MIB = 1048576
IGNORE = f'ignore_macs = ["{THIRD_MAC}"]\n'


def padded_config(tmp_path: Path, size: int) -> Path:
    """A config of exactly `size` bytes: a comment, then the ignore_macs line last."""
    comment = "# " + "x" * (size - len(IGNORE) - 3) + "\n"
    path = write_file(tmp_path / "config.toml", comment + IGNORE, 0o600)
    assert path.stat().st_size == size
    return path


def test_a_config_of_exactly_1_mib_is_read_to_its_last_line(tmp_path):
    assert load_config(padded_config(tmp_path, MIB)).ignore_macs == (THIRD_MAC,)


@pytest.mark.parametrize("size", [MIB + 1, 3 * MIB])
def test_a_config_over_1_mib_is_refused_in_one_line(tmp_path, size):
    path = padded_config(tmp_path, size)
    with pytest.raises(InvalidInput) as info:
        load_config(path)
    assert info.value.exit_code == 4
    assert_one_line(info.value.message)
    assert str(path) in info.value.message and f"({size})" in info.value.message
    assert "larger than 1048576 bytes" in info.value.message


def test_the_command_exits_4_with_one_line(tmp_path):
    path = padded_config(tmp_path, MIB + 1)
    cp = subprocess.run([sys.executable, "-m", "eni_agent", "validate", "--config", str(path),
                         "--metadata", str(write_file(tmp_path / "m.json", EXAMPLE_BYTES))],
                        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 4, cp
    assert cp.stderr.count("\n") == 1 and cp.stderr.startswith("eni-agent: invalid config "), cp.stderr
    assert "larger than" in cp.stderr and cp.stdout == ""


def test_a_metadata_file_over_1_mib_is_refused_by_the_reader(tmp_path):
    """Refused by the file reader itself, naming the size: not a cut the JSON
    parser happens to reject."""
    path = write_file(tmp_path / "m.json", EXAMPLE_BYTES + b" " * (MIB + 1 - len(EXAMPLE_BYTES)))
    with pytest.raises(InvalidInput) as info:
        load_metadata(str(path))
    assert info.value.exit_code == 4
    assert_one_line(info.value.message)
    assert info.value.message == (f"invalid metadata {path}: larger than 1048576 bytes ({MIB + 1}); "
                                  "refusing it rather than reading part of it")


def test_a_metadata_file_of_exactly_1_mib_is_read(tmp_path):
    path = write_file(tmp_path / "m.json", EXAMPLE_BYTES + b" " * (MIB - len(EXAMPLE_BYTES)))
    assert load_metadata(str(path)).secondary_enis


def test_a_route_table_named_past_1_mib_stays_named(tmp_path, monkeypatch):
    rt_tables = tmp_path / "rt_tables"
    rt_tables.write_text("#" * (2 * MIB) + "\n10001 vpn\n")
    monkeypatch.setattr(host, "RT_TABLES_FILES", (str(rt_tables),))
    monkeypatch.setattr(host, "RT_TABLES_DIRS", ())
    assert host.named_tables() == {10001}
