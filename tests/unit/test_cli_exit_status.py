"""One place turns what a command raised into the exit code and the stderr
line (`eni_agent.main`); click reads every command line."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import click
import pytest

from eni_agent import commands, errors, main as main_module
from eni_agent.errors import ExitCode
from eni_agent.main import exit_status, main

from tests.harness.commands import REPO
from tests.harness.documents import write_file


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    """run(*args) -> (exit code, stdout, stderr) of main(), in-process, with
    an empty config file."""
    monkeypatch.delenv("ENI_AGENT_DEBUG", raising=False)
    config = str(write_file(tmp_path / "config.toml", ""))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        extra = ["--config", config] if args and args[0] in commands.__dict__ else []
        monkeypatch.setattr(sys, "argv", ["eni-agent", *args, *extra])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        return info.value.code, out, err

    return run


def raising(monkeypatch, error: BaseException) -> None:
    """Make `eni-agent validate` raise `error` once click has read its command line."""
    def validate(config, as_json=False):
        raise error
    monkeypatch.setattr(commands, "validate", validate)


@pytest.mark.parametrize("error, code, line", [
    (errors.InvalidInput("bad gateway"), 4, "eni-agent: bad gateway\n"),
    (errors.MetadataUnavailable("no service"), 5, "eni-agent: no service\n"),
    (errors.PermissionDenied("not root"), 6, "eni-agent: not root\n"),
    (errors.Locked("held"), 7, "eni-agent: held\n"),
    (KeyboardInterrupt(), 130, "eni-agent: interrupted\n"),
    (BrokenPipeError(), 0, ""),
    (ZeroDivisionError("division\nby zero"), 1,
     "eni-agent: internal error: ZeroDivisionError: division by zero "
     "(set ENI_AGENT_DEBUG=1 for a traceback)\n"),
])
def test_what_a_command_raises_becomes_one_line_and_its_exit_code(run, monkeypatch, error,
                                                                   code, line):
    raising(monkeypatch, error)
    got, out, err = run("validate")
    assert (got, out, err) == (code, "", line)


def test_an_internal_error_is_a_traceback_with_eni_agent_debug(run, monkeypatch):
    raising(monkeypatch, ZeroDivisionError("boom"))
    monkeypatch.setenv("ENI_AGENT_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["eni-agent", "validate"])
    with pytest.raises(ZeroDivisionError):
        main()


def test_an_expected_error_is_one_line_even_with_eni_agent_debug(run, monkeypatch):
    raising(monkeypatch, errors.InvalidInput("bad"))
    monkeypatch.setenv("ENI_AGENT_DEBUG", "1")
    assert run("validate") == (4, "", "eni-agent: bad\n")


def test_control_characters_in_an_error_are_escaped(run, monkeypatch):
    raising(monkeypatch, errors.InvalidInput("link eth\x1b[2J1 is odd"))
    assert run("validate") == (4, "", "eni-agent: link eth\\x1b[2J1 is odd\n")


@pytest.mark.parametrize("args, needle", [
    (["validate", "--protocol", "abc"], "'abc' is not a valid integer"),
    (["sync", "--jso"], "--jso"),  # click's wording differs between releases
    (["no-such-command"], "No such command 'no-such-command'"),
    ([], "missing command"),
])
def test_a_bad_command_line_is_exit_2_with_the_help_hint(run, args, needle):
    code, out, err = run(*args)
    assert (code, out) == (2, "")
    assert err.startswith("eni-agent: ") and err.endswith(" (see eni-agent --help)\n")
    assert err.count("\n") == 1 and needle in err


def test_abbreviations_and_equals_forms_are_clicks_to_read(run, monkeypatch):
    seen = {}

    def validate(config, as_json=False):
        seen.update(protocol=config.protocol, as_json=as_json)
        return 0
    monkeypatch.setattr(commands, "validate", validate)
    code, _, err = run("validate", "--protocol=235", "--json")
    assert (code, err) == (0, "")
    assert seen == {"protocol": 235, "as_json": True}


def test_the_returned_code_is_the_exit_code(run, monkeypatch):
    monkeypatch.setattr(commands, "validate", lambda config, as_json=False: 3)
    assert run("validate")[0] == 3


@pytest.mark.parametrize("error, expected", [
    (click.exceptions.Exit(0), (0, None)),
    (click.exceptions.Abort(), (130, "interrupted")),
    (click.UsageError("no"), (2, "no (see eni-agent --help)")),
    (click.ClickException("file trouble"), (2, "file trouble")),
])
def test_exit_status_of_clicks_own_exceptions(error, expected):
    assert exit_status(error) == expected


def test_a_closed_pipe_on_stdout_is_a_quiet_exit_0():
    """`eni-agent --help | true`: the reader left; nothing to report."""
    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
            "from eni_agent.main import main\nsys.argv = ['eni-agent', '--help']\nmain()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_the_quick_reader_is_gone():
    assert not hasattr(main_module, "QUICK") and not hasattr(main_module, "read_quick")


def test_cli_does_not_import_main():
    """No cycle: the entry point imports the command line, never the reverse."""
    code = "import eni_agent.cli, sys; print('eni_agent.main' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_console_script_is_main():
    found = importlib.metadata.entry_points()
    scripts = (found.select(group="console_scripts") if hasattr(found, "select")
               else found["console_scripts"])  # Python 3.9: a dict of groups
    ours = [s for s in scripts if s.name == "eni-agent"]
    # (one per copy of the metadata on the path: an editable install may add one)
    assert ours and {s.value for s in ours} == {"eni_agent.main:main"}
    assert ours[0].load() is main


def test_python_dash_m_reads_the_command_line_with_click():
    proc = subprocess.run([sys.executable, "-m", "eni_agent", "sync", "--jso"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr.startswith("eni-agent: No such option") and "--jso" in proc.stderr
    assert proc.stderr.endswith(" (see eni-agent --help)\n") and proc.stderr.count("\n") == 1


def test_guard_without_a_remembered_list_says_so_and_succeeds(run):
    code, out, err = run("guard")
    assert (code, err) == (0, "")
    assert out.startswith("no ENIs remembered (") and "kept-off-macs" in out


def test_guard_writes_the_remembered_enis_files(run):
    from eni_agent import coexist

    paths = coexist.PATHS  # the unit tests' scratch root
    paths.dhclient_hooks_dir.mkdir(parents=True)
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "kept-off-macs").write_text("00:16:3e:00:01:01\n")
    code, out, err = run("guard")
    assert (code, err) == (0, "")
    # dhclient's hook and MAC list, and the list itself in its own words (a header)
    assert "3 file(s) written, 0 failed" in out
    assert (paths.run_dir / "dhclient-macs").read_text() == "00:16:3e:00:01:01\n"


def test_guard_with_an_unusable_run_directory_exits_9(run):
    from eni_agent import coexist

    paths = coexist.PATHS
    paths.dhclient_hooks_dir.mkdir(parents=True)
    paths.state_dir.mkdir(parents=True)
    (paths.state_dir / "kept-off-macs").write_text("00:16:3e:00:01:01\n")
    paths.run_dir.parent.mkdir(parents=True)
    paths.run_dir.write_text("a file where the directory goes")
    code, out, err = run("guard")
    assert code == 9 and len(err.splitlines()) == 1 and "Traceback" not in err
