"""The TOML config: defaults, each setting validated, overrides, file handling."""

from __future__ import annotations

from pathlib import Path

import pytest

import eni_agent.config as config_module
from eni_agent.config import Config, load_config
from eni_agent.errors import ExitCode, InvalidInput

from tests.harness.documents import assert_one_line, write_file

@pytest.fixture(autouse=True)
def no_host_config(tmp_path, monkeypatch):
    """The default path points into tmp_path, so the host's /etc never matters."""
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "absent" / "config.toml")

def config_file(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    return write_file(tmp_path / name, text, 0o600)

def expect_invalid(path: Path | None, overrides=None, *needles: str) -> str:
    with pytest.raises(InvalidInput) as info:
        load_config(path, overrides)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert_one_line(info.value.message)
    for needle in needles:
        assert needle in info.value.message, (needle, info.value.message)
    return info.value.message

DEFAULTS = dict(metadata=None, table_base=10000, rule_priority=10000, protocol=234,
                ignore_macs=(), ignore_interfaces=(), resync_interval=30.0, log_level="info")

def settings_of(config: Config, names=DEFAULTS) -> dict:
    return {name: getattr(config, name) for name in names}

def test_defaults():
    assert settings_of(Config()) == DEFAULTS

def test_default_path_missing_gives_defaults():
    assert settings_of(load_config(None)) == DEFAULTS

def test_empty_file_gives_defaults(tmp_path):
    assert settings_of(load_config(config_file(tmp_path, ""))) == DEFAULTS

def test_default_path_is_read_when_present(tmp_path, monkeypatch):
    path = config_file(tmp_path, "table_base = 20000\n")
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", path)
    assert load_config(None).table_base == 20000

def test_full_file(tmp_path):
    path = config_file(tmp_path, """
metadata = "/etc/eni-agent/metadata.json"
table_base = 20000
rule_priority = 500
protocol = 235
ignore_macs = ["00:16:3E:00:01:01"]
ignore_interfaces = ["cali*", "eth9"]
resync_interval = 5
log_level = "debug"
""")
    assert settings_of(load_config(path)) == dict(
        metadata="/etc/eni-agent/metadata.json", table_base=20000, rule_priority=500,
        protocol=235, ignore_macs=("00:16:3e:00:01:01",), ignore_interfaces=("cali*", "eth9"),
        resync_interval=5.0, log_level="debug")

@pytest.mark.parametrize(
    "setting, value",
    [
        ("protocol", 5), ("protocol", 233), ("protocol", 235), ("protocol", 255),
        ("rule_priority", 1), ("rule_priority", 32765),
        ("table_base", 256), ("table_base", 2**31),
    ],
)
def test_accepted_values(tmp_path, setting, value):
    config = load_config(config_file(tmp_path, f"{setting} = {value}\n"))
    assert getattr(config, setting) == value

@pytest.mark.parametrize(
    "text, needles",
    [
        # protocol numbers the kernel or iproute2 already name
        ("protocol = 186", ["protocol", "186 is already a named routing protocol"]),  # bgp
        ("protocol = 2", ["protocol", "named"]),  # kernel
        ("protocol = 3", ["protocol", "named"]),  # boot
        ("protocol = 4", ["protocol", "named"]),  # static
        ("protocol = 16", ["protocol", "named"]),  # dhcp
        ("protocol = 192", ["protocol", "named"]),  # eigrp
        ("protocol = 0", ["protocol"]),
        ("protocol = 256", ["protocol"]),
        ("protocol = -1", ["protocol"]),
        ('protocol = "high"', ["protocol"]),
        ("protocol = 234.5", ["protocol"]),
        # rules must come before the main table's rule
        ("rule_priority = 32766", ["rule_priority"]),
        ("rule_priority = 32767", ["rule_priority"]),
        ("rule_priority = 0", ["rule_priority"]),
        ("rule_priority = -5", ["rule_priority"]),
        # table_base range
        ("table_base = 255", ["table_base"]),
        ("table_base = 0", ["table_base"]),
        ("table_base = 2147483649", ["table_base"]),
        ("table_base = [1]", ["table_base"]),
        # MACs and interface names
        ('ignore_macs = ["eth1"]', ["ignore_macs", "not a MAC address"]),
        ('ignore_macs = ["00:16:3e:00:01"]', ["ignore_macs", "not a MAC address"]),
        ('ignore_macs = ["00-16-3e-00-01-01"]', ["ignore_macs", "not a MAC address"]),
        ('ignore_macs = "00:16:3e:00:01:01"', ["ignore_macs"]),
        ("ignore_macs = [1]", ["ignore_macs"]),
        ('ignore_interfaces = [""]', ["ignore_interfaces"]),
        ('ignore_interfaces = ["a-name-of-16-chr"]', ["ignore_interfaces"]),
        ('ignore_interfaces = ["a/b"]', ["ignore_interfaces"]),
        ('ignore_interfaces = ["eth 1"]', ["ignore_interfaces"]),
        ('ignore_interfaces = ["eth\\n1"]', ["ignore_interfaces"]),
        ("metadata = 5", ["metadata"]),
        ("resync_interval = 0", ["resync_interval"]),
        ("resync_interval = 86401", ["resync_interval"]),
        ('log_level = "verbose"', ["log_level"]),
        # unknown keys and tables
        ("tablebase = 10000", ["tablebase", "unknown setting"]),
        ("[daemon]\ninterval = 5", ["daemon", "unknown setting"]),
        # not TOML
        ("table_base = ", ["invalid config"]),
        ("table_base = 1\ntable_base = 2", ["invalid config"]),
        ("[[", ["invalid config"]),
        ("protocol: 235", ["invalid config"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_refused_values(tmp_path, text, needles):
    path = config_file(tmp_path, text + "\n")
    expect_invalid(path, None, str(path), *needles)

def test_non_utf8_config_is_refused(tmp_path):
    path = config_file(tmp_path, b'metadata = "\xff"\n')
    expect_invalid(path, None, "invalid config")

def test_unknown_key_with_newline_stays_on_one_line(tmp_path):
    expect_invalid(config_file(tmp_path, '"bad\\nkey" = 1\n'), None, "unknown setting")

@pytest.mark.parametrize("text", ["rule_priority = true", 'rule_priority = "100"',
                                  'protocol = "235"', 'table_base = "20000"',
                                  "table_base = 20000.0", 'resync_interval = "30"',
                                  'ignore_macs = [true]', "metadata = false"])
def test_settings_must_have_their_toml_type(tmp_path, text):
    expect_invalid(config_file(tmp_path, text + "\n"), None, text.split()[0])

def test_overrides_win_over_the_file(tmp_path):
    path = config_file(tmp_path, 'table_base = 20000\nprotocol = 235\nignore_macs = []\n'
                                 'metadata = "/from/file.json"\n')
    config = load_config(path, {"table_base": 30000, "protocol": None,
                                "ignore_macs": ("00:16:3E:00:01:01",),
                                "metadata": "/from/flag.json"})
    assert config.table_base == 30000
    assert config.protocol == 235  # a None override leaves the file's value
    assert config.ignore_macs == ("00:16:3e:00:01:01",)
    assert config.metadata == "/from/flag.json"

def test_overrides_are_validated_and_named_as_flags(tmp_path):
    path = config_file(tmp_path, "protocol = 235\ntable_base = 100\n")
    message = expect_invalid(path, {"protocol": 186, "table_base": 20000}, "invalid --protocol: ",
                             "named")
    assert str(path) not in message  # the file's value was fine
    expect_invalid(None, {"rule_priority": 40000}, "invalid --rule-priority: ")
    expect_invalid(None, {"ignore_interfaces": ("a b",)}, "invalid --ignore-interface: ")
    # a bad value in the file, while a flag sets another setting, names the file
    expect_invalid(path, {"protocol": 235}, f"invalid config {path}: table_base: ")

def test_empty_metadata_source_is_refused(tmp_path):
    """An empty string would otherwise mean "the ECS service" (a `--metadata "$UNSET"`)."""
    expect_invalid(None, {"metadata": ""}, "invalid --metadata: ")
    expect_invalid(config_file(tmp_path, 'metadata = ""\n'), None, "metadata")

def test_explicit_missing_path_is_invalid_input(tmp_path):
    missing = tmp_path / "nope.toml"
    expect_invalid(missing, None, str(missing), "not found")

def test_directory_as_config_is_invalid_input(tmp_path):
    expect_invalid(tmp_path, None, str(tmp_path), "cannot read")

# -- any settings: a Config, or one clean line (exit 4) ---------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eni_agent.config import make_config  # noqa: E402

_NUMBERS = st.one_of(st.integers(min_value=-2, max_value=2**32),
                     st.sampled_from([0, 1, 5, 186, 234, 255, 256, 32765, 32766, 86400, 86401,
                                      2**31, 2**31 + 1]),
                     st.floats(allow_nan=True, allow_infinity=True), st.booleans())
_STRINGS = st.one_of(st.text(max_size=20),
                     st.sampled_from(["00:16:3e:00:01:01", "00:16:3E:00:01:01", "eth1", "cali*",
                                      "a/b", "eth 1", "x" * 16, "", "info", "INFO", "verbose"]))
_VALUES = st.one_of(_NUMBERS, _STRINGS, st.none(), st.lists(st.one_of(_STRINGS, _NUMBERS),
                                                            max_size=3),
                    st.dictionaries(st.text(max_size=5), _NUMBERS, max_size=2))
_KEYS = st.one_of(st.sampled_from(tuple(Config.model_fields)), st.text(max_size=10))


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.data())
def test_any_settings_make_a_config_or_one_clean_line(values, data):
    flags = frozenset(data.draw(st.sets(st.sampled_from(sorted(values) or ["x"]))))
    try:
        config = make_config(values, "c.toml", flags)
    except InvalidInput as e:
        assert e.exit_code == ExitCode.INVALID_INPUT
        assert_one_line(e.message)
        assert e.message.startswith(("invalid config c.toml: ", "invalid --"))
        return
    assert isinstance(config, Config) and hash(config) == hash(config.replace())
    assert set(values) <= set(Config.model_fields)
    assert all(mac == mac.lower() for mac in config.ignore_macs)
    assert 256 <= config.table_base <= 2**31 and 1 <= config.protocol <= 255
    assert 1 <= config.resync_interval <= 86400 and 5 <= config.metadata_interval <= 86400


def test_config_is_frozen_hashable_and_replace_validates():
    config = Config()
    with pytest.raises(ValueError):
        config.table_base = 1  # type: ignore[misc]
    assert {config, Config()} == {Config()}
    assert config.replace(protocol=235) == make_config({"protocol": 235})
    with pytest.raises(ValueError):
        config.replace(protocol=186)


def test_containers_settings_default_off():
    assert (Config().main_table_first, Config().manage_only) == (False, ())


def test_manage_only_takes_macs_normalised_and_eni_ids_as_given(tmp_path):
    path = config_file(tmp_path, 'main_table_first = true\n'
                                 'manage_only = ["00:16:3E:00:01:01", "eni-bp1AbC"]\n')
    config = load_config(path)
    assert config.main_table_first is True
    assert config.manage_only == ("00:16:3e:00:01:01", "eni-bp1AbC")
    assert config.main_table_priority == 9999


@pytest.mark.parametrize("text, needles", [
    ('manage_only = ["eth1"]', ["manage_only", "not a MAC address or an ENI id"]),
    ('manage_only = ["eni-"]', ["manage_only"]),
    ('manage_only = ["eni-a b"]', ["manage_only"]),
    ('manage_only = "eni-a"', ["manage_only"]),
    ("manage_only = [1]", ["manage_only"]),
    ('main_table_first = "yes"', ["main_table_first"]),
    ("main_table_first = 1", ["main_table_first"]),
    ("main_table_first = true\nrule_priority = 1", ["rule_priority", "main_table_first"]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_containers_settings_refused(tmp_path, text, needles):
    path = config_file(tmp_path, text + "\n")
    expect_invalid(path, None, str(path), *needles)


def test_rule_priority_1_is_fine_without_main_table_first():
    assert load_config(None, {"rule_priority": 1}).rule_priority == 1
