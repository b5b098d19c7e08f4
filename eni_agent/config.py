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
    keep_managers_off = true  # keep NetworkManager, systemd-networkd and dhclient off the
                              # listed ENIs (networkmanager_unmanaged = true: the old name)
    main_table_first = false  # containers on the host: `from all lookup main
                              # suppress_prefixlength 0` at rule_priority - 1
    manage_only = []          # configure only these ENIs (MACs or ENI ids); a CNI
                              # (Terway) owns the others
    primary_secondary_ips = true  # add the primary ENI's secondary IPs to its NIC
    follow_addresses = true   # route addresses others put on an ENI (keepalived's VIP)
                              # inside its vswitch through it: docs/ha-clusters.md
    subnet_routes = true      # `<vswitch> dev <ENI> src <ENI ip>` in main for an ENI
                              # outside the primary's vswitch: docs/management-networks.md
    burst_for_virtual_links = false  # daemon, for test topologies: a veth (any link
                              # with a kind) may start a failover burst
    metrics_file = "/var/lib/node_exporter/textfile_collector/eni-agent.prom"
                              # daemon: Prometheus metrics (unset: none)
    mtu = "primary"           # or a number: the ENIs' MTU (unset: left as it is)
    queues = "max"            # every queue the ENI's NIC offers (unset: left as it is)
    [[routes]]                # repeatable: these destinations through that ENI's gateway,
    eni = "eni-..."           # in main, src the ENI's primary IP (an ENI id or a MAC)
    to = ["10.9.0.0/16"]

Command-line flags override the file; the merged result is validated once, by
the pydantic model `Config` (the one declaration of every setting: its type,
default, bounds and rules).
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, Optional, Tuple, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool,
                      StrictInt, StrictStr, ValidationError, model_validator)

from eni_agent.errors import InvalidInput
from eni_agent.files import read_trusted
from eni_agent.model import describe, invalid, normalize_mac

DEFAULT_CONFIG_PATH = Path("/etc/eni-agent/config.toml")
DEFAULT_PROTOCOL = 234
MAIN_RULE_PRIORITY = 32766
# Protocol numbers the kernel or iproute2 already name (rtnetlink.h, rt_protos).
NAMED_PROTOCOLS = frozenset({0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 42, 99,
                             186, 187, 188, 189, 192})
RESERVED_TABLES = frozenset({0, 253, 254, 255})  # unspec, default, main, local
MAX_TABLE = 2**32 - 1
ENI_ID = re.compile(r"eni-[0-9A-Za-z]{1,64}")  # "eni-2zeb0kbbnlxa8kebjcz6"


def _source(value: Optional[str]) -> Optional[str]:
    if value == "":
        raise invalid("empty (leave it out to use the ECS metadata service)")
    return value


def _unnamed_protocol(value: int) -> int:
    if value in NAMED_PROTOCOLS:
        raise invalid(f"{value} is already a named routing protocol; pick another")
    return value


def _macs(value: Tuple[str, ...]) -> Tuple[str, ...]:
    macs = []
    for item in value:
        mac = normalize_mac(item)
        if mac is None:
            raise invalid(f"not a MAC address: {item!r}")
        macs.append(mac)
    return tuple(macs)


def _enis(value: Tuple[str, ...]) -> Tuple[str, ...]:
    """MACs (normalised) or ENI ids ("eni-..."), as given."""
    enis = []
    for item in value:
        mac = normalize_mac(item)
        if mac is None and not ENI_ID.fullmatch(item):
            raise invalid(f"not a MAC address or an ENI id: {item!r}")
        enis.append(mac or item)
    return tuple(enis)


def _interface_patterns(value: Tuple[str, ...]) -> Tuple[str, ...]:
    """Interface names or shell globs ("cali*"), as given."""
    for item in value:
        if not item or len(item) > 15 or "/" in item or any(c.isspace() for c in item):
            raise invalid(f"not an interface name or pattern: {item!r}")
    return value


def _absolute_path(value: Optional[str]) -> Optional[str]:
    if value is not None and (not value.startswith("/") or "\0" in value or value.endswith("/")):
        raise invalid(f"not an absolute file path: {value!r}")
    return value


def _seconds(value: object) -> float:
    if type(value) not in (int, float):  # not a bool, not a string
        raise invalid("must be a number of seconds")
    return float(value)


def _destinations(value: Tuple[str, ...]) -> tuple:
    """CIDRs (IPv4 or IPv6), never a default route."""
    if not value:
        raise invalid("empty: name at least one destination CIDR")
    networks = []
    for item in value:
        try:
            network = ip_network(item)
        except ValueError as e:
            raise invalid(f"not a CIDR: {item!r} ({e})") from None
        if network.prefixlen == 0:
            raise invalid(f"{item!r} is a default route; eni-agent routes only specific "
                          "destinations in main")
        networks.append(network)
    return tuple(networks)


class RouteSpec(BaseModel):
    """One [[routes]] entry: these destinations through this ENI, in main."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    eni: Annotated[StrictStr, AfterValidator(lambda v: _enis((v,))[0])]
    to: Annotated[Tuple[StrictStr, ...], AfterValidator(_destinations)]


# Strict types: TOML is typed, so `protocol = "235"` or `= true` is a mistake.
Seconds = Annotated[float, BeforeValidator(_seconds)]


class Config(BaseModel):
    """The agent's settings, validated (build one with `load_config` or
    `make_config`, which word the refusals for the file or the flag)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata: Annotated[Optional[StrictStr], AfterValidator(_source)] = Field(
        None, description="The metadata document (a JSON file) or service (http://HOST[:PORT]); "
                          "unset: the ECS metadata service http://100.100.100.200.")
    table_base: StrictInt = Field(
        10000, ge=256, le=2**31,
        description="An ENI's route table is table_base plus its link's ifindex.")
    rule_priority: StrictInt = Field(
        10000, ge=1, le=MAIN_RULE_PRIORITY - 1,
        description="Priority of every `from <ip> lookup <table>` rule.")
    protocol: Annotated[StrictInt, AfterValidator(_unnamed_protocol)] = Field(
        DEFAULT_PROTOCOL, ge=1, le=255,
        description="Netlink protocol number that marks the routes, rules and addresses "
                    "eni-agent owns; only marked objects are ever deleted.")
    ignore_macs: Annotated[Tuple[StrictStr, ...], AfterValidator(_macs)] = Field(
        (), description="NICs to leave alone, by MAC.")
    ignore_interfaces: Annotated[Tuple[StrictStr, ...], AfterValidator(_interface_patterns)] = Field(
        (), description='NICs to leave alone, by interface name or shell glob ("cali*").')
    resync_interval: Seconds = Field(
        30.0, ge=1, le=86400,
        description="daemon: seconds between full resyncs (the safety net).")
    metadata_interval: Seconds = Field(
        12.0, ge=5, le=86400,
        description="daemon: seconds between polls of the metadata service.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="daemon: the least important messages logged.")
    # Keep the image's network managers (NetworkManager, systemd-networkd, dhclient)
    # off the listed ENIs: see coexist.py and docs/network-managers.md.
    keep_managers_off: StrictBool = Field(
        True, description="Keep NetworkManager, systemd-networkd and dhclient off the listed "
                          "ENIs (runtime files that tell them so).")
    networkmanager_unmanaged: StrictBool = Field(
        False, description="The old name of keep_managers_off: true keeps them off too.")
    # `from all lookup main suppress_prefixlength 0` just before the ENI rules:
    # replies to a bridge (docker0, cni0) or a VPN route in `main` stay local.
    main_table_first: StrictBool = Field(
        False, description="Containers on the host: `from all lookup main "
                           "suppress_prefixlength 0` at rule_priority - 1, so what main routes "
                           "more specifically than by its default route stays local.")
    # Configure only these ENIs (MACs or ENI ids); every other one is ignored,
    # and what the agent owns on its NIC is left as it is. Empty: all ENIs.
    manage_only: Annotated[Tuple[StrictStr, ...], AfterValidator(_enis)] = Field(
        (), description="Configure only these ENIs (MACs or ENI ids); what eni-agent owns on "
                        "any other NIC is left as it is (a CNI such as Terway owns those). "
                        "Empty: all ENIs.")
    primary_secondary_ips: StrictBool = Field(
        True, description="Add the primary ENI's secondary private IPs (its full metadata "
                          "entry's private-ipv4s and ipv6s) to the primary NIC, noprefixroute, "
                          "marked; nothing else on the primary changes.")
    follow_addresses: StrictBool = Field(
        True, description="Give an address someone else put on a managed ENI inside its "
                          "vswitch (keepalived's VIP) a marked `from <address> lookup <ENI "
                          "table>` rule; the address itself is never touched.")
    subnet_routes: StrictBool = Field(
        True, description="`<vswitch cidr> dev <ENI> src <ENI primary IP>` in main for an ENI "
                          "outside the primary's vswitch, so connections to it leave by the ENI.")
    routes: Tuple[RouteSpec, ...] = Field(
        (), description="[[routes]] tables, each `eni` (an ENI id or MAC) and `to` (CIDRs): "
                        "those destinations via the ENI's gateway, src its primary IP, in main.")
    burst_for_virtual_links: StrictBool = Field(
        False, description="daemon, test topologies only (their ENIs are veths): a link with a "
                           "netlink kind may start a failover burst of metadata fetches.")
    metrics_file: Annotated[Optional[StrictStr], AfterValidator(_absolute_path)] = Field(
        None, description="daemon: write Prometheus metrics to this file (for node_exporter's "
                          "textfile collector: a *.prom file in its directory); unset: none.")
    mtu: Optional[Union[Literal["primary"], Annotated[StrictInt, Field(ge=68, le=65535)]]] = Field(
        None, description='Hot-plugged ENIs like the image\'s own NICs: their MTU, "primary" '
                          "(the primary NIC's, as Alibaba's boot scripts set it) or a number; "
                          "unset: the platform's value stays.")
    queues: Optional[Literal["max"]] = Field(
        None, description='"max": every queue the ENI\'s NIC offers (`ethtool -L IFACE '
                          'combined <max>`); unset: left as it is.')

    @model_validator(mode="after")
    def _room_for_main_table_first(self) -> Config:
        if self.main_table_first and self.rule_priority < 3:
            raise invalid(f"{self.rule_priority} leaves no room before it for "
                          "main_table_first's rules (rule_priority - 2 and - 1); use 3 or more",
                          where="rule_priority")
        return self

    @model_validator(mode="after")
    def _each_destination_once(self) -> Config:
        seen: set = set()
        for spec in self.routes:
            for dst in spec.to:
                if dst in seen:
                    raise invalid(f"{dst} is claimed twice", where="routes")
                seen.add(dst)
        return self

    @property
    def main_table_priority(self) -> int:
        """The priority of main_table_first's rule: just before the ENI rules."""
        return self.rule_priority - 1

    @property
    def subnet_rule_priority(self) -> int:
        """main_table_first's ENI subnet lookups: before `main`'s rule."""
        return self.rule_priority - 2

    def replace(self, **changes: object) -> Config:
        return type(self).model_validate({**dict(self), **changes})


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
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib

        try:
            values = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InvalidInput(f"invalid config {where}: {' '.join(str(e).split())}") from None
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(flags)
    return make_config(values, where, frozenset(flags))


def make_config(values: dict[str, object], where: str = "settings",
                from_flags: frozenset[str] = frozenset()) -> Config:
    """Validate settings (TOML types: tuples or lists for arrays) into a Config,
    or raise `InvalidInput` naming the first bad one: as its command-line flag
    if `from_flags` says it came from one, else as a setting of the config
    file `where`."""
    try:
        return Config.model_validate(values)
    except ValidationError as e:
        problem = describe(e)
    setting = problem.loc[0] if problem.loc else ""
    if setting in from_flags and setting in Config.model_fields:  # flags are known settings
        flag = "--" + (setting.removesuffix("s") if setting.startswith("ignore_")
                       else setting).replace("_", "-")
        raise InvalidInput(f"invalid {flag}: {problem.reason}") from None
    raise InvalidInput(f"invalid config {where}: {problem.text}") from None
