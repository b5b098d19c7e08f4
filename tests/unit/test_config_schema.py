"""The config's quick acceptance path agrees with its pydantic schema of record.

`make_config` accepts plainly valid settings without importing pydantic; all
else goes to `config_schema`. Agreement means: whatever the quick path
accepts, the schema accepts with the same result, and nothing the schema
refuses gets through.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eni_agent.config import SETTINGS, Config, _plainly_valid, make_config
from eni_agent.config_schema import ConfigSchema, validate
from eni_agent.errors import InvalidInput

from ._helpers import REPO

NUMBERS = st.one_of(
    st.integers(min_value=-2, max_value=2**32),
    st.sampled_from([0, 1, 4, 5, 186, 234, 255, 256, 32765, 32766, 86400, 86401, 2**31,
                     2**31 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["00:16:3e:00:01:01", "00:16:3E:00:01:01", " 00:16:3e:00:01:01 ",
                     "eth1", "cali*", "a/b", "eth 1", "x" * 16, "", "info", "debug", "INFO",
                     "verbose", "/etc/eni-agent/metadata.json", "http://127.0.0.1:1"]),
)
ANY_VALUE = st.one_of(NUMBERS, STRINGS, st.none(),
                      st.lists(st.one_of(STRINGS, NUMBERS), max_size=3),
                      st.lists(STRINGS, max_size=3).map(tuple))
KEYS = st.sampled_from(SETTINGS + ("tablebase", "daemon", "Protocol"))


def schema_result(values: dict) -> Config | None:
    try:
        return validate(values, "test")
    except InvalidInput:
        return None


def same(a: Config, b: Config) -> bool:
    """Equal, with NaN never involved (the schema refuses it) and 5 == 5.0."""
    return all(getattr(a, f) == getattr(b, f) and type(getattr(a, f)) is type(getattr(b, f))
               for f in SETTINGS)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(KEYS, ANY_VALUE, max_size=5))
def test_quick_path_never_accepts_what_the_schema_refuses(values):
    quick = _plainly_valid(values)
    if quick is not None:
        reference = schema_result(values)
        assert reference is not None, values
        assert same(quick, reference), (quick, reference)


@settings(max_examples=500, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "metadata": STRINGS,
    "table_base": st.integers(256, 2**31),
    "rule_priority": st.integers(1, 32765),
    "protocol": st.integers(1, 255).filter(lambda p: p not in {2, 3, 4, 16, 186, 192}),
    "ignore_macs": st.lists(st.sampled_from(["00:16:3e:00:01:01", "00:16:3E:AA:01:01"])),
    "ignore_interfaces": st.lists(st.sampled_from(["eth1", "cali*", "ens[0-9]"])),
    "resync_interval": st.one_of(st.integers(1, 86400), st.floats(1, 86400)),
    "metadata_interval": st.one_of(st.integers(5, 86400), st.floats(5, 86400)),
    "log_level": st.sampled_from(["debug", "info", "warning", "error"]),
    "networkmanager_unmanaged": st.booleans(),
}))
def test_ordinary_settings_take_the_quick_path(values):
    """What operators write is accepted without pydantic, as the schema would."""
    quick = _plainly_valid(values)
    reference = schema_result(values)
    if reference is not None:
        assert quick is not None, values
        assert same(quick, reference), (quick, reference)


def test_schema_and_config_have_the_same_settings_and_defaults():
    assert tuple(ConfigSchema.model_fields) == SETTINGS
    assert ConfigSchema().model_dump() == Config()._asdict()


def test_refusals_are_the_schemas():
    with pytest.raises(InvalidInput) as info:
        make_config({"protocol": 186}, "where")
    assert info.value.message == ("invalid config where: protocol: 186 is already a named "
                                  "routing protocol; pick another")


def test_shipped_config_is_read_without_importing_pydantic(tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes((REPO / "examples" / "config.toml").read_bytes())
    config.chmod(0o600)
    code = ("import sys; from pathlib import Path; from eni_agent.config import load_config; "
            f"c = load_config(Path({str(config)!r})); "
            "print(c.metadata, 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    assert out == ["/etc/eni-agent/metadata.json", "False"]
