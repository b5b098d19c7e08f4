"""The command line: parse options, call the library, print the result.

Heavy modules (pydantic models, pyroute2) are imported inside the commands so
`eni-agent --help` stays fast. `main()` is the one place that turns errors
into exit codes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import click

from eni_agent import __version__
from eni_agent.errors import AgentError, ExitCode, one_line

UDEV_WAIT = 11.0  # seconds sync waits for udev to name new NICs (its gate gives up at 10)
EXIT_CODES_HELP = """\b
Exit codes:
  0  converged (ENIs whose NIC is not there yet are pending, not failed)
  1  internal error (a bug)
  2  bad command line
  3  some change failed or did not verify; `status`: not in sync
  4  invalid metadata or config (nothing was changed)
  5  metadata unavailable (nothing was changed)
  6  permission denied (not root, or an input file others can write)
  7  another eni-agent is applying changes (waited 10 s for the lock)
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="eni-agent")
def cli() -> None:
    """Configure secondary cloud NICs (ENIs) with per-NIC policy routing."""


def config_options(func):
    """--config and the flags that override its settings."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Config file (TOML). Default: /etc/eni-agent/config.toml if present.")
    @click.option("--table-base", type=int, help="ENI route table = base + ifindex.")
    @click.option("--rule-priority", type=int, help="Priority of the `from <ip>` rules.")
    @click.option("--protocol", type=int, help="Netlink protocol number marking owned state.")
    @click.option("--ignore-mac", "ignore_macs", multiple=True, help="Leave this NIC alone.")
    @click.option("--ignore-interface", "ignore_interfaces", multiple=True, metavar="NAME",
                  help="Leave NICs with this name (shell glob) alone.")
    @functools.wraps(func)
    def wrapper(*args, config_path, table_base, rule_priority, protocol, ignore_macs,
                ignore_interfaces, **kwargs):
        from eni_agent.config import load_config

        overrides = {
            "table_base": table_base,
            "rule_priority": rule_priority,
            "protocol": protocol,
            "ignore_macs": ignore_macs or None,
            "ignore_interfaces": ignore_interfaces or None,
            "metadata": kwargs.pop("metadata", None),
            "resync_interval": kwargs.pop("resync_interval", None),
            "log_level": kwargs.pop("log_level", None),
        }
        # The daemon reloads the same file with the same flags on SIGHUP.
        click.get_current_context().meta["config_args"] = (config_path, overrides)
        return func(*args, config=load_config(config_path, overrides), **kwargs)

    return wrapper


metadata_option = click.option(
    "--metadata", metavar="PATH|URL",
    help="Metadata document (JSON file) or service (http://HOST[:PORT]). Default: the config's "
         "`metadata`, else the ECS service http://100.100.100.200.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")


def _netlink(config):
    from eni_agent.netlink import Netlink  # pyroute2 is only imported here

    return Netlink(config.protocol)


def _writer_lock(dry_run: bool):
    """The lock shared with the daemon; a dry run changes nothing and needs none."""
    from eni_agent.lock import apply_lock

    return contextlib.nullcontext() if dry_run else apply_lock()


def _emit(report, as_json: bool) -> int:
    from eni_agent.report import report_json, report_text

    click.echo(report_json(report) if as_json else report_text(report))
    return int(report.exit_code)


@cli.command()
@metadata_option
@config_options
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@json_option
def sync(config, dry_run: bool, as_json: bool) -> int:
    """Configure every attached ENI once, then exit."""
    from eni_agent.engine import reconcile
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    if not dry_run:
        from eni_agent.coexist import keep_others_off

        keep_others_off(config, metadata)
    with _netlink(config) as nl, _writer_lock(dry_run):
        return _emit(reconcile(nl, metadata, config, dry_run=dry_run, udev_wait=UDEV_WAIT),
                     as_json)


@cli.command()
@metadata_option
@config_options
@json_option
def status(config, as_json: bool) -> int:
    """Show desired vs observed state per ENI; change nothing."""
    from eni_agent.engine import status as engine_status
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    with _netlink(config) as nl:
        return _emit(engine_status(nl, metadata, config), as_json)


@cli.command()
@metadata_option
@config_options
@json_option
def validate(config, as_json: bool) -> int:
    """Check a metadata document; touch nothing."""
    from eni_agent.report import metadata_json, metadata_text
    from eni_agent.sources import effective_source, load_metadata

    metadata = load_metadata(config.metadata)
    show = metadata_json if as_json else metadata_text
    click.echo(show(metadata, effective_source(config.metadata)))
    return int(ExitCode.OK)


@cli.command()
@config_options
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@json_option
def cleanup(config, dry_run: bool, as_json: bool) -> int:
    """Remove every address, route and rule eni-agent created (and nothing else)."""
    from eni_agent.engine import reconcile

    with _netlink(config) as nl, _writer_lock(dry_run):
        return _emit(reconcile(nl, None, config, dry_run=dry_run, command="cleanup"), as_json)


@cli.command()
@metadata_option
@config_options
@click.option("--resync-interval", type=float, metavar="SECONDS",
              help="Full resync as a safety net (default 30).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Default: info.")
def daemon(config) -> int:
    """Run continuously: reconcile on hotplug, drift and metadata changes."""
    from eni_agent.daemon import Daemon
    from eni_agent.log import setup_logging

    setup_logging(config.log_level)
    config_path, overrides = click.get_current_context().meta["config_args"]
    return Daemon(config, config_path, overrides).run()


def main() -> None:
    try:
        code = cli.main(prog_name="eni-agent", standalone_mode=False)
    except AgentError as e:
        _fail(e.message, e.exit_code)
    except click.exceptions.Abort:
        _fail("interrupted", ExitCode.INTERNAL)
    except click.ClickException as e:  # bad command line: one line, like every other error
        hint = " (see eni-agent --help)" if isinstance(e, click.UsageError) else ""
        _fail(one_line(e.format_message()) + hint, ExitCode.USAGE)
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
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _fail(message: str, code: ExitCode) -> None:
    click.echo(f"eni-agent: {message}", err=True)
    sys.exit(int(code))
