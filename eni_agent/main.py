"""The entry point, `eni-agent ARGS`: click reads the command line, the
command runs, and `exit_status` turns whatever it raised into the documented
exit code and one `eni-agent: ...` line on stderr.

That is the only place an exception becomes an exit status: the commands
return an exit code or raise an `AgentError` (errors.py groups them by who
must act, each with its code).
"""

from __future__ import annotations

import os
import sys

from eni_agent.errors import AgentError, ExitCode, one_line, print_error


COMPLETE_VAR = "_ENI_AGENT_COMPLETE"  # click's name for the program's completion variable


def run(argv: list[str]) -> int:
    """Read `argv` with click and run the command; return its exit code."""
    from eni_agent.cli import cli

    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:  # shell completion (`_ENI_AGENT_COMPLETE=bash_source eni-agent`)
        from click.shell_completion import shell_complete

        return shell_complete(cli, {}, "eni-agent", COMPLETE_VAR, instruction)
    # make_context + invoke rather than cli.main(): click's main() has its own
    # policies for ^C (a blank line on stderr) and a broken pipe (exit 1).
    with cli.make_context("eni-agent", list(argv)) as ctx:
        code = cli.invoke(ctx)
    return ExitCode.OK if code is None else int(code)


def exit_status(error: BaseException) -> tuple[int, str | None]:
    """(exit code, the one line for stderr or None) for an exception that
    ended a command."""
    import click

    if isinstance(error, AgentError):
        return int(error.exit_code), error.message
    if isinstance(error, click.exceptions.Exit):  # --help, --version
        return int(error.exit_code), None
    if isinstance(error, click.ClickException):  # bad command line
        hint = " (see eni-agent --help)" if isinstance(error, click.UsageError) else ""
        return int(ExitCode.USAGE), one_line(error.format_message()) + hint
    if isinstance(error, (KeyboardInterrupt, click.exceptions.Abort)):
        return int(ExitCode.INTERRUPTED), "interrupted"
    if isinstance(error, BrokenPipeError):  # `eni-agent status | head -1`: not an error
        return int(ExitCode.OK), None
    return int(ExitCode.INTERNAL), (f"internal error: {type(error).__name__}: {one_line(error)} "
                                    "(set ENI_AGENT_DEBUG=1 for a traceback)")


def main(argv: list[str] | None = None) -> None:
    """The console script `eni-agent` and `python -m eni_agent`."""
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except Exception as e:  # noqa: BLE001 (exit_status sorts them)
        if os.environ.get("ENI_AGENT_DEBUG") and not isinstance(e, _expected()):
            raise
        code, message = exit_status(e)
        if isinstance(e, BrokenPipeError):
            _silence_stdout()
        if message is not None:
            print_error(message)
    except KeyboardInterrupt as e:
        code, message = exit_status(e)
        print_error(message)
    sys.exit(code)


def _silence_stdout() -> None:
    """The reader of stdout is gone: stop the interpreter's own flush at exit
    from failing again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor
        pass


def _expected() -> tuple[type[BaseException], ...]:
    """Exceptions that are not bugs, so never a traceback, debug or not."""
    import click

    return AgentError, click.ClickException, click.exceptions.Exit, click.exceptions.Abort, \
        BrokenPipeError
