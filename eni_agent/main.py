"""The entry point, `eni-agent ARGS`: run a command, turn errors into exit codes.

click (`cli`) defines and documents the command line. Importing it costs a
one-shot process 20-45 ms on a small VM, a sixth of a cold sync, so the
ordinary invocations of the one-shot commands (long options spelled out in
full, values plain words or digits) are read here from `QUICK`, a table a
test holds equal to click's declarations and to click's own reading of the
same arguments. Anything else (help, a mistake, an abbreviation, an odd
value) goes to click, which owns every message about the command line.
"""

from __future__ import annotations

import os
import sys

from eni_agent.errors import AgentError, ExitCode, one_line

# command -> option -> (parameter, kind): "flag", "text", "number" or "texts" (repeatable).
_CONFIG_OPTIONS = {
    "--config": ("config_path", "text"),
    "--table-base": ("table_base", "number"),
    "--rule-priority": ("rule_priority", "number"),
    "--protocol": ("protocol", "number"),
    "--ignore-mac": ("ignore_macs", "texts"),
    "--ignore-interface": ("ignore_interfaces", "texts"),
}
_METADATA = {"--metadata": ("metadata", "text")}
_JSON = {"--json": ("as_json", "flag")}
_DRY_RUN = {"--dry-run": ("dry_run", "flag")}
QUICK: dict[str, dict[str, tuple[str, str]]] = {
    "sync": {**_METADATA, **_CONFIG_OPTIONS, **_DRY_RUN, **_JSON},
    "status": {**_METADATA, **_CONFIG_OPTIONS, **_JSON},
    "validate": {**_METADATA, **_CONFIG_OPTIONS, **_JSON},
    "cleanup": {**_CONFIG_OPTIONS, **_DRY_RUN, **_JSON},
}
CONFIG_PARAMETERS = ("config_path", "metadata", "table_base", "rule_priority", "protocol",
                     "ignore_macs", "ignore_interfaces", "resync_interval", "log_level")


def read_quick(argv: list[str]) -> tuple[str, dict[str, object]] | None:
    """(command, parameters as click would pass them), or None for click to read."""
    if not argv or argv[0] not in QUICK:
        return None
    options = QUICK[argv[0]]
    params: dict[str, object] = {}
    for dest, kind in options.values():
        params[dest] = False if kind == "flag" else () if kind == "texts" else None
    args = iter(argv[1:])
    for arg in args:
        name, equals, value = arg.partition("=")
        dest, kind = options.get(name, (None, None))
        if dest is None:
            return None
        if kind == "flag":
            if equals or params[dest]:
                return None
            params[dest] = True
            continue
        if not equals:
            value = next(args, None)
        if value is None or not value or value.startswith("-") or not value.isprintable():
            return None
        if kind == "number":
            if not (value.isascii() and value.isdigit()):
                return None
            value = int(value)
        if kind == "texts":
            params[dest] += (value,)
        elif params[dest] is not None:
            return None  # given twice: click's rule (the last wins) is for click to apply
        else:
            params[dest] = value
    return argv[0], params


def config_args(params: dict[str, object]) -> tuple[object, dict[str, object]]:
    """(config file or None, flag overrides) from the parameters that name
    them, which are taken out of `params`."""
    overrides = {name: params.pop(name, None) for name in CONFIG_PARAMETERS}
    path = overrides.pop("config_path")
    if path is not None:
        from pathlib import Path

        path = Path(path)
    for name in ("ignore_macs", "ignore_interfaces"):
        overrides[name] = overrides[name] or None  # no flag: the file's list stands
    return path, overrides


def _quick(command: str, params: dict[str, object]) -> int:
    from eni_agent import commands
    from eni_agent.config import load_config

    config = load_config(*config_args(params))
    return getattr(commands, command)(config, **params)


def _click(argv: list[str]) -> int:
    import click

    from eni_agent.cli import cli

    try:
        code = cli.main(args=argv, prog_name="eni-agent", standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.ClickException as e:  # bad command line: one line, like every other error
        hint = " (see eni-agent --help)" if isinstance(e, click.UsageError) else ""
        _fail(one_line(e.format_message()) + hint, ExitCode.USAGE)
    return code if isinstance(code, int) else ExitCode.OK


def main() -> None:
    argv = sys.argv[1:]
    try:
        quick = read_quick(argv)
        code = _quick(*quick) if quick else _click(argv)
    except AgentError as e:
        _fail(e.message, e.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.OK)
    except KeyboardInterrupt:
        _fail("interrupted", ExitCode.INTERNAL)
    except Exception as e:  # a bug: one line, and the traceback only on request
        if os.environ.get("ENI_AGENT_DEBUG"):
            raise
        _fail(f"internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
              "(set ENI_AGENT_DEBUG=1 for a traceback)", ExitCode.INTERNAL)
    sys.exit(code)


def _fail(message: str, code: ExitCode) -> None:
    sys.stderr.write(f"eni-agent: {message}\n")
    sys.stderr.flush()
    sys.exit(int(code))
