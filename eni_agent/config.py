"""The agent's config file (TOML), validated like the metadata.

    metadata = "/etc/eni-agent/metadata.json"   # or http://HOST[:PORT]; default: the
                                                # ECS service http://100.100.100.200
    table_base = 10000        # ENI route table = table_base + the link's ifindex
    rule_priority = 10000     # priority of every `from <ip> lookup <table>` rule
    protocol = 234            # netlink protocol that marks what the agent owns
    ignore_macs = []          # NICs to leave alone, by MAC ...
    ignore_interfaces = []    # ... or by interface name (shell globs: "cali*")
    resync_interval = 30      # daemon: full resync as a safety net, seconds
    metadata_interval = 60    # daemon: how often to poll the metadata service, seconds
    log_level = "info"        # debug | info | warning | error
    networkmanager_unmanaged = false  # write unmanaged-devices for ENI MACs in NM's conf.d

Command-line flags override the file; the merged result is validated once.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
                      ValidationError, field_validator)

from eni_agent.errors import InvalidInput, one_line
from eni_agent.files import read_trusted
from eni_agent.model import normalize_mac

DEFAULT_CONFIG_PATH = Path("/etc/eni-agent/config.toml")
DEFAULT_PROTOCOL = 234
MAIN_RULE_PRIORITY = 32766
# Protocol numbers the kernel or iproute2 already name (rtnetlink.h, rt_protos).
NAMED_PROTOCOLS = frozenset({0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 42, 99,
                             186, 187, 188, 189, 192})
RESERVED_TABLES = frozenset({0, 253, 254, 255})  # unspec, default, main, local
MAX_TABLE = 2**32 - 1


class Config(BaseModel):
    # The schema is built only when something needs validating (see load_config).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # Strict types: TOML is typed, so `protocol = "235"` or `= true` is a mistake.
    metadata: StrictStr | None = None
    table_base: StrictInt = Field(10000, ge=256, le=2**31)
    rule_priority: StrictInt = Field(10000, ge=1, lt=MAIN_RULE_PRIORITY)
    protocol: StrictInt = Field(DEFAULT_PROTOCOL, ge=1, le=255)
    ignore_macs: tuple[StrictStr, ...] = ()
    ignore_interfaces: tuple[StrictStr, ...] = ()
    resync_interval: StrictInt | StrictFloat = Field(30.0, ge=1, le=86400)  # daemon, seconds
    metadata_interval: StrictInt | StrictFloat = Field(60.0, ge=5, le=86400)  # service poll
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    networkmanager_unmanaged: StrictBool = False  # keep NetworkManager off the listed ENIs

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
            if not item or len(item) > 15 or "/" in item or any(c.isspace() for c in item):
                raise ValueError(f"not an interface name or pattern: {item!r}")
        return value


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the config file (if any), apply flag overrides, validate.

    `path=None` means the default location, which may be absent; an explicit
    path must exist.
    """
    values: dict[str, Any] = {}
    where = str(path or DEFAULT_CONFIG_PATH)
    try:
        data = read_trusted(path or DEFAULT_CONFIG_PATH, "config")
    except FileNotFoundError:
        if path is not None:
            raise InvalidInput(f"config {path}: file not found") from None
        data = None
    except OSError as e:
        raise InvalidInput(f"config {where}: cannot read: {e.strerror}") from None
    if data is not None:
        try:
            values = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidInput(f"invalid config {where}: {' '.join(str(e).split())}") from None
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if values.keys() <= {"metadata"} and isinstance(values.get("metadata", ""), str):
        # Defaults, plus at most the source (any string is one): valid by
        # construction. Building pydantic's schema to check it would cost a
        # one-shot run more than all its netlink work.
        return Config.model_construct(**values)
    try:
        return Config.model_validate(values)
    except ValidationError as e:
        raise InvalidInput(f"invalid config {where}: {describe_validation_error(e)}") from None


def describe_validation_error(error: ValidationError) -> str:
    """The first pydantic error as one line: `field: problem`."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown setting"
    if not field.isprintable() or any(c.isspace() for c in field):
        field = json.dumps(field)  # a key with a newline must not split the message
    return one_line(f"{field}: {message}")
