"""The agent's config file (TOML), validated like the metadata.

    metadata = "/etc/eni-agent/metadata.json"   # or http://HOST[:PORT]; default: the
                                                # ECS service http://100.100.100.200
    table_base = 10000        # ENI route table = table_base + the link's ifindex
    rule_priority = 10000     # priority of every `from <ip> lookup <table>` rule
    protocol = 234            # netlink protocol that marks what the agent owns
    ignore_macs = []          # NICs to leave alone, by MAC ...
    ignore_interfaces = []    # ... or by interface name (shell globs: "cali*")
    resync_interval = 30      # daemon: full resync as a safety net, seconds
    metadata_interval = 12    # daemon: how often to poll the metadata service, seconds
    log_level = "info"        # debug | info | warning | error
    networkmanager_unmanaged = false  # write unmanaged-devices for ENI MACs in NM's conf.d

Command-line flags override the file; the merged result is validated once.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from eni_agent.errors import InvalidInput
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
LOG_LEVELS = ("debug", "info", "warning", "error")
# Inclusive bounds of the numeric settings; the pydantic schema reads them too.
BOUNDS: dict[str, tuple[float, float]] = {
    "table_base": (256, 2**31),
    "rule_priority": (1, MAIN_RULE_PRIORITY - 1),
    "protocol": (1, 255),
    "resync_interval": (1, 86400),
    "metadata_interval": (5, 86400),
}


class Config(NamedTuple):
    """The agent's settings, validated (build one with `load_config` or
    `make_config`; the constructor itself checks nothing)."""

    metadata: str | None = None
    table_base: int = 10000
    rule_priority: int = 10000
    protocol: int = DEFAULT_PROTOCOL
    ignore_macs: tuple[str, ...] = ()
    ignore_interfaces: tuple[str, ...] = ()
    resync_interval: float = 30.0  # daemon, seconds
    metadata_interval: float = 12.0  # daemon: how often to poll the metadata service
    log_level: str = "info"
    networkmanager_unmanaged: bool = False  # keep NetworkManager off the listed ENIs

    def replace(self, **changes: object) -> Config:
        return self._replace(**changes)


SETTINGS = Config._fields


def load_config(path: Path | None, overrides: dict[str, object] | None = None) -> Config:
    """Read the config file (if any), apply flag overrides, validate.

    `path=None` means the default location, which may be absent; an explicit
    path must exist.
    """
    values: dict[str, object] = {}
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
        import tomllib

        try:
            values = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidInput(f"invalid config {where}: {' '.join(str(e).split())}") from None
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(flags)
    return make_config(values, where, frozenset(flags))


def make_config(values: dict[str, object], where: str = "settings",
                from_flags: frozenset[str] = frozenset()) -> Config:
    """Validate settings (TOML types: tuples or lists for arrays) into a Config.

    The pydantic schema (`config_schema`) is the validator of record: every
    refusal and its message come from it (naming the flag for a setting in
    `from_flags`, else the setting in the config file `where`). Importing
    pydantic costs a one-shot run more than all its netlink work, so settings
    that are plainly valid by the same rules (`_plainly_valid`; a property
    test holds the two to agreeing) skip it.
    """
    config = _plainly_valid(values)
    if config is None:
        from eni_agent.config_schema import validate

        config = validate(values, where, from_flags)
    return config


def _plainly_valid(values: dict[str, object]) -> Config | None:
    """The Config these settings make if each has exactly its type and is in
    range; None when anything needs a closer look (or a message)."""
    if not values.keys() <= set(SETTINGS):
        return None
    settings = dict(values)
    for name, (low, high) in BOUNDS.items():
        if name not in values:
            continue
        value = values[name]
        allowed = (int, float) if name.endswith("_interval") else (int,)
        if type(value) not in allowed or not low <= value <= high:
            return None
    if settings.get("protocol") in NAMED_PROTOCOLS:
        return None
    if type(values.get("metadata", "-")) is not str or values.get("metadata") == "" or \
            type(values.get("networkmanager_unmanaged", False)) is not bool or \
            values.get("log_level", "info") not in LOG_LEVELS:
        return None
    for name, check in (("ignore_macs", normalize_mac), ("ignore_interfaces", interface_pattern)):
        items = values.get(name, ())
        if type(items) not in (list, tuple) or any(type(i) is not str for i in items):
            return None
        checked = tuple(check(item) for item in items)
        if None in checked:
            return None
        settings[name] = checked
    return Config(**settings)


def interface_pattern(value: str) -> str | None:
    """An interface name or shell glob as given; None if it cannot be one."""
    if not value or len(value) > 15 or "/" in value or any(c.isspace() for c in value):
        return None
    return value
