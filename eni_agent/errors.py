"""Errors grouped by who must act, each with its own exit code.

The CLI maps an `AgentError` to its `exit_code` and prints its message as one
line on stderr; nothing else ever turns into an exit status.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # converged (pending ENIs are not a failure)
    INTERNAL = 1  # a bug: please report it
    USAGE = 2  # bad command line (click's own code)
    CHANGE_FAILED = 3  # input was fine, but some change did not apply or verify
    INVALID_INPUT = 4  # metadata or config is invalid; nothing was changed
    METADATA_UNAVAILABLE = 5  # metadata could not be read; nothing was changed
    PERMISSION = 6  # not allowed: not root, or an input file others can write
    LOCKED = 7  # another eni-agent holds the lock


def one_line(text: object, limit: int = 300) -> str:
    """Any text as one line (every expected failure is one line on stderr)."""
    return " ".join(str(text).split())[:limit]


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


class NetlinkFailure(AgentError):
    """The kernel refused a request in a way the agent cannot work around."""

    exit_code = ExitCode.CHANGE_FAILED
