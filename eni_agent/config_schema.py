"""The config's schema of record, in pydantic: strict TOML types, ranges,
unknown settings refused, each refusal one line naming the setting.

`config.make_config` comes here for anything it cannot accept at a glance,
so every message about a bad setting is pydantic's; the import is paid only
then (and by the tests that hold the glance to this schema).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      ValidationError, field_validator)

from eni_agent.config import BOUNDS, NAMED_PROTOCOLS, Config, interface_pattern
from eni_agent.errors import InvalidInput, one_line
from eni_agent.model import normalize_mac

_DEFAULTS = Config()


def _bounded(name: str) -> Any:
    low, high = BOUNDS[name]
    return Field(getattr(_DEFAULTS, name), ge=low, le=high)


class ConfigSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict types: TOML is typed, so `protocol = "235"` or `= true` is a mistake.
    metadata: StrictStr | None = None  # omitted: the ECS metadata service
    table_base: StrictInt = _bounded("table_base")
    rule_priority: StrictInt = _bounded("rule_priority")
    protocol: StrictInt = _bounded("protocol")
    ignore_macs: tuple[StrictStr, ...] = ()
    ignore_interfaces: tuple[StrictStr, ...] = ()
    resync_interval: StrictInt | StrictFloat = _bounded("resync_interval")
    metadata_interval: StrictInt | StrictFloat = _bounded("metadata_interval")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    networkmanager_unmanaged: StrictBool = False

    @field_validator("metadata")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value == "":
            raise ValueError("empty (leave it out to use the ECS metadata service)")
        return value

    @field_validator("protocol")
    @classmethod
    def _unnamed_protocol(cls, value: int) -> int:
        if value in NAMED_PROTOCOLS:
            raise ValueError(f"{value} is already a named routing protocol; pick another")
        return value

    @field_validator("ignore_macs")
    @classmethod
    def _macs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        macs = []
        for item in value:
            mac = normalize_mac(item)
            if mac is None:
                raise ValueError(f"not a MAC address: {item!r}")
            macs.append(mac)
        return tuple(macs)

    @field_validator("ignore_interfaces")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if interface_pattern(item) is None:
                raise ValueError(f"not an interface name or pattern: {item!r}")
        return value


def validate(values: dict[str, Any], where: str,
             from_flags: frozenset[str] = frozenset()) -> Config:
    """The Config these settings make, or `InvalidInput` naming the first bad
    one: as its command-line flag if `from_flags` says it came from one."""
    try:
        schema = ConfigSchema.model_validate(values)
    except ValidationError as e:
        field, problem = describe_validation_error(e)
        setting = field.split(".")[0]
        if setting in from_flags:
            flag = "--" + (setting.removesuffix("s") if setting.startswith("ignore_")
                           else setting).replace("_", "-")
            raise InvalidInput(f"invalid {flag}: {problem}") from None
        raise InvalidInput(f"invalid config {where}: {field}: {problem}") from None
    return Config(**dict(schema))


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """The first pydantic error as (setting, problem), each on one line."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown setting"
    if not field.isprintable() or any(c.isspace() for c in field):
        field = json.dumps(field)  # a key with a newline must not split the message
    return field, one_line(message)
