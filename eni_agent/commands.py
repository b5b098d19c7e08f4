"""What the one-shot commands do, once click (`cli`) has read their options:
call the library, print, return the exit code. Heavy modules (pyroute2,
pydantic) are imported inside each command, so `--help` loads neither.
"""

from __future__ import annotations

import sys

from eni_agent.errors import ExitCode, print_error

UDEV_WAIT = 11.0  # seconds sync waits for udev to name new NICs (its gate gives up at 10)


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _netlink(config):
    from eni_agent.netlink import Netlink

    return Netlink(config.protocol)


def _writer_lock():
    """The lock shared with the daemon, taken before anything changes."""
    from eni_agent.lock import apply_lock

    return apply_lock()


def _emit(report, as_json: bool) -> int:
    """Print the report; one stderr line per ENI left alone as invalid."""
    from eni_agent.report import report_json, report_text

    echo(report_json(report) if as_json else report_text(report))
    for eni in report.invalid:
        for error in eni.errors:
            print_error(error)
    return int(report.exit_code)


def sync(config, dry_run: bool = False, as_json: bool = False) -> int:
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    if dry_run:
        from eni_agent.engine import preview

        with _netlink(config) as nl:
            return _emit(preview(nl, metadata, config, command="sync", udev_wait=UDEV_WAIT),
                         as_json)
    from eni_agent.coexist import keep_others_off
    from eni_agent.engine import reconcile

    # The lock first: the network managers' files too are changes, and a full
    # or read-only /run stops the sync (exit 9) before any file or the kernel
    # changes.
    with _writer_lock():
        keep_others_off(config, metadata, strict=True)  # (it reads the settings that decide)
        with _netlink(config) as nl:
            return _emit(reconcile(nl, metadata, config, udev_wait=UDEV_WAIT), as_json)


def status(config, as_json: bool = False, fresh: bool = False) -> int:
    """The running daemon's view while one (of this network namespace) writes
    it, else (or with `fresh`) a view computed now."""
    if not fresh:
        import time

        from eni_agent.daemon_view import netns_inode, read_live, state_path, view_exit_code, \
            view_json, view_text

        doc = read_live(state_path(), netns=netns_inode())
        if doc is not None:
            echo((view_json if as_json else view_text)(doc, time.time()))
            return view_exit_code(doc)
    from eni_agent.engine import preview
    from eni_agent.sources import load_metadata

    metadata = load_metadata(config.metadata)
    with _netlink(config) as nl:
        report = preview(nl, metadata, config, command="status")
    from eni_agent.host import in_initial_netns

    if in_initial_netns():  # other agents on the image: the host's files say
        from eni_agent.image_agents import annotate

        annotate(report, config)
    return _emit(report, as_json)


def validate(config, as_json: bool = False) -> int:
    from eni_agent.report import invalid_enis, metadata_json, metadata_text
    from eni_agent.sources import effective_source, load_metadata

    metadata = load_metadata(config.metadata)
    show = metadata_json if as_json else metadata_text
    echo(show(metadata, effective_source(config.metadata)))
    invalid = invalid_enis(metadata)
    for eni in invalid:
        print_error(eni.message)
    return int(ExitCode.INVALID_INPUT if invalid else ExitCode.OK)


def cleanup(config, dry_run: bool = False, as_json: bool = False) -> int:
    if dry_run:
        from eni_agent.engine import preview

        with _netlink(config) as nl:
            return _emit(preview(nl, None, config, command="cleanup"), as_json)
    from eni_agent.coexist import remove_all
    from eni_agent.engine import reconcile
    from eni_agent.host import in_initial_netns

    with _writer_lock(), _netlink(config) as nl:
        code = _emit(reconcile(nl, None, config, command="cleanup"), as_json)
    if in_initial_netns():
        remove_all()  # the files that kept the network managers off the ENIs
    return code


def guard(config) -> int:
    """eni-agent-guard.service: the network managers' files for the ENIs of
    the last run, written before the managers start (their runtime parts are
    gone after a reboot, and the metadata cannot be read before the network)."""
    from eni_agent.coexist import PATHS, REMEMBERED_NAME, guard as write_again

    applied = write_again(config, strict=True)
    if applied is None:
        echo(f"no ENIs remembered ({PATHS.state_dir / REMEMBERED_NAME}): nothing to keep off")
    else:
        echo(f"kept the network managers off the ENIs of the last run: "
             f"{len(applied.changes)} file(s) written, {len(applied.failed)} failed")
    return int(ExitCode.OK)
