"""The command line, as click defines and documents it.

`eni_agent.main` is the entry point: it runs `cli` and turns errors into exit
codes. The commands' work is in `eni_agent.commands`, which imports the heavy
modules (pyroute2, pydantic) inside each command, so `--help` needs neither.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from eni_agent import __version__, commands

EXIT_CODES_HELP = """\b
Exit codes:
  0  converged (ENIs whose NIC is not there yet are pending, not failed)
  1  internal error (a bug)
  2  bad command line
  3  not converged: some change failed or did not verify, or an ENI needs
     an operator; status: not in sync
  4  invalid metadata or config: nothing changed, or only the named
     invalid ENIs were left as they are
  5  metadata unavailable (nothing was changed)
  6  permission denied (not root, or an input file others can write)
  7  another eni-agent is applying changes (waited 10 s for the lock)
  8  daemon: another eni-agent daemon runs in this network namespace
  9  a runtime path under /run cannot be written (full or read-only;
     nothing was changed)
130 interrupted (Ctrl-C)
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP,
             invoke_without_command=True, no_args_is_help=False)
@click.version_option(__version__, prog_name="eni-agent")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Configure secondary cloud NICs (ENIs) with per-NIC policy routing."""
    if ctx.invoked_subcommand is None:
        # Said the same way by every click release (8.1 printed the help and exited 0).
        raise click.UsageError("missing command")


# The parameters that make the config: the file, and the flags overriding it.
CONFIG_PARAMETERS = ("config_path", "metadata", "table_base", "rule_priority", "protocol",
                     "ignore_macs", "ignore_interfaces", "resync_interval", "log_level")


def config_args(params: dict[str, object]) -> tuple[Path | None, dict[str, object]]:
    """(config file or None, flag overrides) from the parameters that name
    them, which are taken out of `params`."""
    overrides = {name: params.pop(name, None) for name in CONFIG_PARAMETERS}
    path = overrides.pop("config_path")
    for name in ("ignore_macs", "ignore_interfaces"):
        overrides[name] = overrides[name] or None  # no flag: the file's list stands
    return (Path(path) if path is not None else None), overrides


def config_options(func):
    """--config and the flags that override its settings."""

    @click.option("--config", "config_path", metavar="FILE",
                  help="Config file (TOML). Default: /etc/eni-agent/config.toml if present.")
    @click.option("--table-base", type=int, help="ENI route table = base + ifindex.")
    @click.option("--rule-priority", type=int, help="Priority of the `from <ip>` rules.")
    @click.option("--protocol", type=int, help="Netlink protocol number marking owned state.")
    @click.option("--ignore-mac", "ignore_macs", multiple=True, help="Leave this NIC alone.")
    @click.option("--ignore-interface", "ignore_interfaces", multiple=True, metavar="NAME",
                  help="Leave NICs with this name (shell glob) alone.")
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from eni_agent.config import load_config

        path, overrides = config_args(kwargs)
        # The daemon reloads the same file with the same flags on SIGHUP.
        click.get_current_context().meta["config_args"] = (path, overrides)
        return func(*args, config=load_config(path, overrides), **kwargs)

    return wrapper


metadata_option = click.option(
    "--metadata", metavar="PATH|URL",
    help="Metadata document (JSON file) or service (http://HOST[:PORT]). Default: the config's "
         "`metadata`, else the ECS service http://100.100.100.200.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Print the plan; change nothing.")


@cli.command()
@metadata_option
@config_options
@dry_run_option
@json_option
def sync(config, dry_run: bool, as_json: bool) -> int:
    """Configure every attached ENI once, then exit."""
    return commands.sync(config, dry_run, as_json)


@cli.command()
@metadata_option
@config_options
@json_option
@click.option("--fresh", is_flag=True,
              help="Compute the view now, even while a running daemon publishes its own.")
def status(config, as_json: bool, fresh: bool) -> int:
    """Show each ENI's state: the running daemon's view (with its age) while one
    runs, else desired vs observed computed now; change nothing."""
    return commands.status(config, as_json, fresh)


@cli.command()
@metadata_option
@config_options
@json_option
def validate(config, as_json: bool) -> int:
    """Check a metadata document; touch nothing."""
    return commands.validate(config, as_json)


@cli.command()
@config_options
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@json_option
def cleanup(config, dry_run: bool, as_json: bool) -> int:
    """Remove every address, route and rule eni-agent created (and nothing else)."""
    return commands.cleanup(config, dry_run, as_json)


@cli.command()
@config_options
def guard(config) -> int:
    """At boot, before any network manager starts: keep the managers off the
    ENIs eni-agent configured at its last run (no metadata, no netlink)."""
    return commands.guard(config)


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
