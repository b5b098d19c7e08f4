"""What the one-shot commands do, once click (`cli`) has read their options:
call the library, print, return the exit code. Heavy modules (pyroute2,
pydantic) are imported inside each command, so `--help` loads neither.
"""

from __future__ import annotations

import contextlib
import sys

from eni_agent.errors import ExitCode

UDEV_WAIT = 11.0  # seconds sync waits for udev to name new NICs (its gate gives up at 10)


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _netlink(config):
    from eni_agent.netlink import Netlink  # pyroute2 only if its backend is chosen

    return Netlink(config.protocol)


def _writer_lock(dry_run: bool):
    """The lock shared with the daemon; a dry run changes nothing and needs none."""
    from eni_agent.lock import apply_lock

    return contextlib.nullcontext() if dry_run else apply_lock()


def _emit(report, as_json: bool) -> int:
    from eni_agent.report import report_json, report_text

    echo(report_json(report) if as_json else report_text(report))
    return int(report.exit_code)


def sync(config, dry_run: bool = False, as_json: bool = False) -> int:
    from eni_agent.engine import reconcile
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    if not dry_run and config.networkmanager_unmanaged:
        from eni_agent.coexist import keep_others_off

        keep_others_off(config, metadata)
    with _netlink(config) as nl, _writer_lock(dry_run):
        return _emit(reconcile(nl, metadata, config, dry_run=dry_run, udev_wait=UDEV_WAIT),
                     as_json)


def status(config, as_json: bool = False) -> int:
    from eni_agent.engine import status as engine_status
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    with _netlink(config) as nl:
        return _emit(engine_status(nl, metadata, config), as_json)


def validate(config, as_json: bool = False) -> int:
    from eni_agent.report import metadata_json, metadata_text
    from eni_agent.sources import effective_source, load_metadata

    metadata = load_metadata(config.metadata)
    show = metadata_json if as_json else metadata_text
    echo(show(metadata, effective_source(config.metadata)))
    return int(ExitCode.OK)


def cleanup(config, dry_run: bool = False, as_json: bool = False) -> int:
    from eni_agent.engine import reconcile

    with _netlink(config) as nl, _writer_lock(dry_run):
        return _emit(reconcile(nl, None, config, dry_run=dry_run, command="cleanup"), as_json)
