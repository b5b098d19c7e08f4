"""Errors grouped by who must act, each with its own exit code.

The CLI (`eni_agent.main.exit_status`) maps an `AgentError` to its `exit_code`
and prints its message as one line on stderr; nothing else ever turns into an
exit status.
"""

from __future__ import annotations

import enum
import errno
import sys


class ExitCode(enum.IntEnum):
    OK = 0  # converged (pending ENIs are not a failure)
    INTERNAL = 1  # a bug: please report it
    USAGE = 2  # bad command line (click's own code)
    # One meaning, "not converged": the kernel is not as the metadata says.
    # sync/cleanup: after trying (a change failed or did not verify, or an ENI
    # needs an operator: conflict, ambiguous, defeated); status: as it stands.
    NOT_CONVERGED = 3
    INVALID_INPUT = 4  # metadata or config is invalid; nothing was changed
    METADATA_UNAVAILABLE = 5  # metadata could not be read; nothing was changed
    PERMISSION = 6  # not allowed: not root, or an input file others can write
    LOCKED = 7  # another eni-agent holds the lock
    ALREADY_RUNNING = 8  # another eni-agent daemon runs in this network namespace
    RUNTIME_PATH_UNUSABLE = 9  # a runtime path (/run/eni-agent, ...) cannot be written
    INTERRUPTED = 130  # a one-shot command stopped by Ctrl-C (SIGINT), as shells count it


def one_line(text: object, limit: int = 300) -> str:
    """Any text as one line (every expected failure is one line on stderr)."""
    return " ".join(str(text).split())[:limit]


def printable(text: object) -> str:
    """`text` with control and other unprintable characters escaped
    (`eth\\x1b[2J`), for people's terminals and logs: an interface name or an
    ENI id can hold them, and must not drive the terminal reading it."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def print_error(message: str) -> None:
    """The one format of every error on stderr: `eni-agent: <one line>`
    (a line break in `message` is escaped like any control character)."""
    sys.stderr.write(f"eni-agent: {printable(message)}\n")
    sys.stderr.flush()


class AgentError(Exception):
    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(AgentError):
    """The operator must fix the metadata document or the config."""

    exit_code = ExitCode.INVALID_INPUT


class MetadataUnavailable(AgentError):
    """The metadata source could not be read; try again later."""

    exit_code = ExitCode.METADATA_UNAVAILABLE


class PermissionDenied(AgentError):
    """The caller lacks privileges, or an input file is writable by others."""

    exit_code = ExitCode.PERMISSION


class Locked(AgentError):
    """Another eni-agent process is applying changes."""

    exit_code = ExitCode.LOCKED



class AlreadyRunning(AgentError):
    """Another eni-agent daemon runs in this network namespace: stop it first."""

    exit_code = ExitCode.ALREADY_RUNNING


class RuntimePathUnusable(AgentError):
    """A path under /run the agent writes (the apply lock, the files keeping
    the network managers off the ENIs) cannot be written: /run is full or
    read-only. The operator must free or remount it."""

    exit_code = ExitCode.RUNTIME_PATH_UNUSABLE

    @classmethod
    def from_os_error(cls, path: object, error: OSError) -> RuntimePathUnusable:
        name = errno.errorcode.get(error.errno or 0, f"errno {error.errno}")
        return cls(f"cannot write the runtime path {error.filename or path}: "
                   f"{error.strerror or error} ({name}); is /run full or read-only?")
