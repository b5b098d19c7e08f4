"""The quick reading of one-shot command lines agrees with click's.

`main.read_quick` reads ordinary invocations without importing click; it
must know exactly the options click declares, and whatever it accepts click
must read to the same parameters. Anything it declines goes to click.
"""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eni_agent.cli import cli
from eni_agent.main import QUICK, read_quick

from ._helpers import EXAMPLE_BYTES, REPO, write_file


def click_kind(param: click.Option) -> str:
    if param.is_flag:
        return "flag"
    if param.multiple:
        return "texts"
    return "number" if param.type is click.INT else "text"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_quick_table_is_clicks_declarations(command):
    declared = {opt: (param.name, click_kind(param))
                for param in cli.commands[command].params if isinstance(param, click.Option)
                for opt in param.opts if opt != "--help"}
    if command == "daemon":
        assert command not in QUICK  # long-running: start-up is paid once
    else:
        assert QUICK[command] == declared


def clicks_reading(argv: list[str]) -> dict:
    command = cli.commands[argv[0]]
    with command.make_context(argv[0], list(argv[1:])) as ctx:
        return dict(ctx.params)


TOKENS = st.sampled_from([
    "--metadata", "--config", "--table-base", "--rule-priority", "--protocol", "--ignore-mac",
    "--ignore-interface", "--dry-run", "--json", "--help", "-h", "--", "--meta", "--jso",
    "/etc/eni-agent/metadata.json", "http://100.100.100.200", "10000", "+5", "-5", "1_000",
    "0x10", "٣", "00:16:3e:00:01:01", "cali*", "", " ", "a b", "x=y", "--json=1",
    "--metadata=/m.json", "--table-base=20000", "--table-base=", "--ignore-mac=aa",
    "--dry-run=true", "sync",
])


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(sorted(QUICK)), st.lists(TOKENS, max_size=6))
def test_whatever_is_read_quickly_click_reads_the_same(command, rest):
    argv = [command, *rest]
    quick = read_quick(argv)
    if quick is None:
        return
    assert quick[0] == command
    assert quick[1] == clicks_reading(argv), argv


@pytest.mark.parametrize("argv", [
    ["sync"],
    ["sync", "--metadata", "/etc/eni-agent/metadata.json"],
    ["sync", "--config", "/etc/eni-agent/config.toml", "--dry-run", "--json"],
    ["sync", "--metadata=/m.json", "--table-base", "20000", "--ignore-mac", "00:16:3e:00:01:01",
     "--ignore-mac", "00:16:3e:00:01:02", "--ignore-interface", "cali*"],
    ["status", "--json"],
    ["validate", "--metadata", "http://100.100.100.200"],
    ["cleanup", "--dry-run", "--protocol", "235"],
])
def test_ordinary_invocations_are_read_quickly(argv):
    quick = read_quick(argv)
    assert quick is not None
    assert quick[1] == clicks_reading(argv)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["--version"], ["sync", "--help"], ["sync", "-h"], ["daemon"],
    ["sync", "--metadata"], ["sync", "--table-base", "ten"], ["sync", "--jso"],
    ["sync", "extra"], ["sync", "--json", "--json"], ["sync", "--metadata", "a", "--metadata", "b"],
])
def test_anything_else_goes_to_click(argv):
    assert read_quick(argv) is None


def test_a_quick_run_does_not_import_click(tmp_path):
    metadata = write_file(tmp_path / "m.json", EXAMPLE_BYTES)
    config = write_file(tmp_path / "c.toml", "")
    code = ("import sys; sys.argv = ['eni-agent', 'validate', '--metadata', sys.argv[1], "
            "'--config', sys.argv[2]]\nfrom eni_agent.main import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n"
            "    print('EXIT', e.code, 'click' in sys.modules, 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(metadata), str(config)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "EXIT 0 False False"
