"""The man pages, eni-agent(8) and eni-agent.toml(5), rendered from the
declarations they document: the click commands and options (`cli`), the
exit codes (the group's epilog, which `--help` prints too), the config model
(`Config`: each setting's type, default and description) and the paths the
agent uses. Run at package build time:

    python -m eni_agent.manpage OUTDIR     -> OUTDIR/eni-agent.8, OUTDIR/eni-agent.toml.5
"""

from __future__ import annotations

import datetime
import os
import sys
import typing
from pathlib import Path

import click

from eni_agent import __version__

FILES_DOC = {  # path -> what it is (the paths themselves come from the modules that use them)
    "config": "The config file (eni-agent.toml(5)); flags override it.",
    "lock": "Held by sync, cleanup and the daemon around every change.",
    "state": "The running daemon's view (JSON, root only): `eni-agent status` shows it.",
    "rt_protos": "Names protocol 234 `eni-agent` for ip(8) (`ip route show proto eni-agent`).",
}


def roff(text: str) -> str:
    """Text safe in a roff line: backslashes escaped, a leading dot or quote
    neutralised, hyphens of options made minus signs."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _header(name: str, section: int, title: str) -> list[str]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds
    date = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).date()
            if epoch and epoch.isdigit() else datetime.date.today()).isoformat()
    return [f'.TH {name.upper()} {section} "{date}" "eni-agent {__version__}" "{title}"']


def _paths() -> dict[str, str]:
    from eni_agent.config import DEFAULT_CONFIG_PATH
    from eni_agent.daemon_view import STATE_NAME
    from eni_agent.lock import DEFAULT_LOCK_PATH

    return {"config": str(DEFAULT_CONFIG_PATH), "lock": DEFAULT_LOCK_PATH,
            "state": str(Path(DEFAULT_LOCK_PATH).parent / STATE_NAME),
            "rt_protos": "/etc/iproute2/rt_protos.d/eni-agent.conf"}


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        opts, help_text = record
        lines += [".TP", f".B {roff(opts)}", roff(help_text or "")]
    return lines


def _exit_codes(epilog: str) -> list[str]:
    """The epilog's `N  text` lines (continued by indented ones) as a list."""
    lines: list[str] = []
    for raw in epilog.splitlines():
        line = raw.strip()
        head = line.split(None, 1)
        if head and head[0].isdigit():
            lines += [".TP", f".B {head[0]}", roff(head[1] if len(head) > 1 else "")]
        elif line and lines and not line.endswith(":") and line != "\b":
            lines.append(roff(line))
    return lines


def eni_agent_8(cli: click.Group) -> str:
    ctx = click.Context(cli, info_name="eni-agent")
    out = _header("eni-agent", 8, "System Administration")
    out += [".SH NAME", "eni\\-agent \\- " + roff(cli.help.rstrip(".").lower()[:1]
                                                   + cli.help.rstrip(".")[1:]),
            ".SH SYNOPSIS", ".B eni\\-agent", "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]", ".br",
            ".B eni\\-agent", "\\-\\-version | \\-\\-help",
            ".SH DESCRIPTION",
            roff("eni-agent configures the secondary network interfaces (ENIs) a cloud "
                 "instance's metadata lists: each gets its addresses, a route table of its own "
                 "and `from <address>` rules, so replies leave through the NIC the traffic "
                 "came in on. Everything it adds carries netlink protocol 234; nothing "
                 "unmarked is ever changed or deleted."),
            ".SH COMMANDS"]
    for name, command in cli.commands.items():
        sub = click.Context(command, info_name=name, parent=ctx)
        out += [".SS " + roff(f"eni-agent {name} [OPTIONS]"), roff(command.help or "")]
        out += [".RS"] + _options(command, sub) + [".RE"]
    out += [".SH OPTIONS"] + _options(cli, ctx)
    out += [".SH EXIT STATUS"] + _exit_codes(cli.epilog or "")
    out += [".SH ENVIRONMENT", ".TP", ".B ENI_AGENT_DEBUG",
            roff("Set: an internal error prints its traceback."),
            ".TP", ".B ENI_AGENT_LOCK", roff("Another lock path (tests); the daemon's state "
                                             "file lives beside the lock.")]
    out += [".SH FILES"]
    for key, path in _paths().items():
        out += [".TP", f".I {roff(path)}", roff(FILES_DOC[key])]
    out += [".SH SEE ALSO", "\\fBeni\\-agent.toml\\fR(5), \\fBip\\fR(8), \\fBip\\-rule\\fR(8), "
            "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)"]
    return "\n".join(out) + "\n"


def _type_name(annotation: object) -> str:
    text = str(annotation)
    if "Literal" in text:
        return " | ".join(f'"{v}"' for v in typing.get_args(annotation))
    if "Tuple" in text or "tuple" in text:
        return "array of strings"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number (seconds)"
    return "string"


def _toml(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[]" if not value else "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(field) -> str:
    lows = [m.ge for m in field.metadata if hasattr(m, "ge")]
    highs = [m.le for m in field.metadata if hasattr(m, "le")]
    return f"; {lows[0]} to {highs[0]}" if lows and highs else ""


def eni_agent_toml_5(config_model) -> str:
    from eni_agent.config import DEFAULT_CONFIG_PATH

    out = _header("eni-agent.toml", 5, "File Formats")
    out += [".SH NAME", "eni\\-agent.toml \\- eni\\-agent's config file",
            ".SH SYNOPSIS", f".I {roff(str(DEFAULT_CONFIG_PATH))}",
            ".SH DESCRIPTION",
            roff("A TOML file, read by every eni-agent command (another with --config). "
                 "Every setting is optional; a command-line flag overrides the file. The file "
                 "and its directories must be writable by root only. Unknown settings, wrong "
                 "types and values out of range are refused (exit status 4). The daemon "
                 "reads it again on SIGHUP."),
            ".SH SETTINGS"]
    for name, field in config_model.model_fields.items():
        annotation = field.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        shown = args[0] if str(annotation).startswith("typing.Optional") and args else annotation
        out += [".TP", f".B {roff(name)}",
                roff(f"{_type_name(shown)}, default {_toml(field.default)}{_bounds(field)}."),
                ".br", roff(field.description or "")]
    out += [".SH EXAMPLE", ".nf", roff('metadata = "http://100.100.100.200"'),
            roff("ignore_interfaces = [\"cali*\", \"docker0\"]"), roff("main_table_first = true"),
            ".fi", ".SH SEE ALSO", "\\fBeni\\-agent\\fR(8)"]
    return "\n".join(out) + "\n"


def write_pages(outdir: Path) -> list[Path]:
    from eni_agent.cli import cli
    from eni_agent.config import Config

    outdir.mkdir(parents=True, exist_ok=True)
    pages = {"eni-agent.8": eni_agent_8(cli), "eni-agent.toml.5": eni_agent_toml_5(Config)}
    for name, text in pages.items():
        (outdir / name).write_text(text)
    return [outdir / name for name in pages]


if __name__ == "__main__":
    for page in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(page)
