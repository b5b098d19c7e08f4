"""Validation problems worded for users: one line naming the place (a field,
an ENI, a setting) and the reason. `invalid` is what a validator raises;
`describe` turns pydantic's first error into that line, for the metadata and
the config alike."""

from __future__ import annotations

import json
from typing import NamedTuple

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from eni_agent.errors import one_line


def invalid(reason: str, where: str | None = None) -> PydanticCustomError:
    """The error a validator raises: `reason` is the text users see; `where`
    (a field, or a place in the document) when it is not the validated value."""
    context = {"reason": reason} if where is None else {"reason": reason, "where": where}
    return PydanticCustomError("eni_agent", "{reason}", context)


class Problem(NamedTuple):
    loc: tuple  # pydantic's location of the first error
    where: str  # the location as users read it ("private-ipv4s[1]"), "" for the value itself
    reason: str

    @property
    def text(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


def describe(error: ValidationError) -> Problem:
    """The first error of a pydantic validation, worded for users, on one line.

    The one place that words pydantic's errors: the metadata's and the
    config's refusals all come through here.
    """
    first = error.errors(include_url=False)[0]
    loc, kind, context = tuple(first["loc"]), first["type"], first.get("ctx") or {}
    where = context.get("where")
    if where is None:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" if i else str(part)
                        for i, part in enumerate(loc))
        if not where.isprintable() or any(c.isspace() for c in where):
            where = json.dumps(where)  # a key with a newline must not split the message
    if kind == "eni_agent":
        reason = context["reason"]
    elif kind == "missing":
        reason = _MISSING.get(loc, "missing")
    elif kind == "extra_forbidden":
        reason = "unknown setting"
    elif kind in ("model_type", "dict_type"):
        reason = f"must be {'a JSON' if not loc else 'an'} object, got {json_type(first['input'])}"
        where = where or "document"
    else:
        reason = first["msg"].removeprefix("Value error, ")
    return Problem(loc, where, one_line(reason))


_MISSING = {("mac",): "missing (the primary NIC's MAC is required)"}


def show(value: object) -> str:
    """A value quoted for a one-line message, cut short if long."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value).__name__)
    return text if len(text) <= 60 else text[:57] + "..."


def json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), "a value")
