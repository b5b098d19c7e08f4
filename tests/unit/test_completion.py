"""Shell completion comes from click's own machinery, through eni-agent's
entry point (which does not use click's main())."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def complete(instruction: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eni_agent"], capture_output=True, text=True,
                          env={**os.environ, "_ENI_AGENT_COMPLETE": instruction, **env})


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"),
                                           ("zsh", "#compdef eni-agent")])
def test_the_completion_script(shell, marker):
    run = complete(f"{shell}_source")
    assert run.returncode == 0 and marker in run.stdout, run.stderr


@pytest.mark.parametrize("words, cword, expected", [
    ("eni-agent cle", "1", ["plain,cleanup"]),
    ("eni-agent sync --dr", "2", ["plain,--dry-run"]),
    ("eni-agent daemon --log-level w", "3", ["plain,warning"]),
])
def test_bash_completes_commands_options_and_choices(words, cword, expected):
    run = complete("bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
    assert run.returncode == 0 and run.stdout.split() == expected, run.stderr
