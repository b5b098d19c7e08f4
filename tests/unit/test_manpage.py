"""The man pages are rendered from what they document: every command and
option click knows, every exit status, every config setting; and groff reads
them without a warning."""

from __future__ import annotations

import shutil
import subprocess

import click
import pytest

from eni_agent.cli import cli
from eni_agent.config import Config
from eni_agent.errors import ExitCode
from eni_agent.manpage import eni_agent_8, eni_agent_toml_5, write_pages


def plain(roff_text: str) -> str:
    return roff_text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def test_every_command_and_option_is_in_eni_agent_8():
    page = plain(eni_agent_8(cli))
    ctx = click.Context(cli, info_name="eni-agent")
    for name, command in cli.commands.items():
        assert f".SS eni-agent {name} [OPTIONS]" in page
        assert command.help in page
        for param in command.get_params(click.Context(command, parent=ctx)):
            for opt in param.opts:
                assert opt in page, (name, opt)


def test_every_exit_status_is_in_eni_agent_8():
    page = plain(eni_agent_8(cli))
    for code in ExitCode:
        assert f".B {int(code)}\n" in page, code


def test_every_setting_is_in_eni_agent_toml_5_with_its_meaning():
    page = plain(eni_agent_toml_5(Config))
    for name, field in Config.model_fields.items():
        assert f".B {name}\n" in page
        assert field.description and plain(field.description.replace("-", "\\-")) in page


def test_a_dotted_line_cannot_become_a_request():
    page = eni_agent_toml_5(Config)
    assert not [line for line in page.splitlines() if line.startswith("'")]


@pytest.mark.skipif(shutil.which("man") is None, reason="man-db not installed")
def test_man_formats_them_without_a_warning(tmp_path):
    for page in write_pages(tmp_path):
        run = subprocess.run(["man", "--warnings", "-l", "-P", "cat", str(page)],
                             capture_output=True, text=True, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
        assert run.returncode == 0 and run.stderr == "", run.stderr
        assert "eni-agent" in run.stdout
