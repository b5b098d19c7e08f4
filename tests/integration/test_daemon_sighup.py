"""SIGHUP reloads the config file (--config): a valid new config takes effect
at once; an invalid one is logged and the running config kept."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.harness.commands import ip
from tests.harness.daemon import configured_daemon
from tests.harness.expect import eni_problems, eni_table
from tests.harness.kernel import describe, ip_json, owned_rules, table_routes
from tests.harness.metadata import build_metadata, metadata_file
from tests.harness.prober import traffic_failures

TIMEOUT = 3.0


def write_config(path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def addresses(t) -> list[str]:
    """IPv4 addresses on eth1."""
    return [a["local"] for link in ip_json(t.guest, "-4", "addr", "show", "dev", "eth1")
            for a in link.get("addr_info", [])]


@pytest.fixture
def setup(topology_with_eni, tmp_path):
    t = topology_with_eni
    path = metadata_file(tmp_path, build_metadata(t))
    config = tmp_path / "etc" / "config.toml"
    write_config(config, "rule_priority = 10000\n")
    return t, t.eni("eth1"), path, config


def test_sighup_moves_rules_to_the_new_priority(setup, tmp_path):
    t, eni, path, config = setup
    with configured_daemon(t, tmp_path, path, config=config, configured_within=0) as d:

        write_config(config, "rule_priority = 20000\n")
        d.send_signal(signal.SIGHUP)
        took = d.wait_until(lambda: not eni_problems(t, eni, priority=20000), TIMEOUT,
                            what="rules at priority 20000")
        print(f"SIGHUP -> rules moved in {took:.3f}s")
        assert {r["priority"] for r in owned_rules(t)} == {20000}
        d.wait_log("SIGHUP: config and metadata reloaded")
        assert traffic_failures(t, eni.ips) == []
        assert d.alive()


def test_sighup_moves_the_eni_to_a_table_of_the_new_table_base(setup, tmp_path):
    t, eni, path, config = setup
    with configured_daemon(t, tmp_path, path, config=config, configured_within=0) as d:
        old_table = eni_table(t, eni)

        write_config(config, "rule_priority = 10000\ntable_base = 20000\n")
        d.send_signal(signal.SIGHUP)
        d.wait_until(lambda: not eni_problems(t, eni, table_base=20000), TIMEOUT,
                     what="rules and routes in the new table")
        d.wait_until(lambda: not table_routes(t, old_table), TIMEOUT, what="old table emptied")
        assert {r["table"] for r in owned_rules(t)} == {str(eni_table(t, eni, table_base=20000))}
        assert traffic_failures(t, eni.ips) == []
        assert d.alive()


def test_sighup_with_the_mac_in_ignore_macs_releases_the_eni(setup, tmp_path):
    t, eni, path, config = setup
    with configured_daemon(t, tmp_path, path, config=config, configured_within=0) as d:

        write_config(config, f'rule_priority = 10000\nignore_macs = ["{eni.mac.upper()}"]\n')
        d.send_signal(signal.SIGHUP)
        d.wait_until(lambda: not owned_rules(t), TIMEOUT, what="the ENI's rules removed")
        d.wait_until(lambda: not addresses(t), TIMEOUT, what="the ENI's addresses removed")
        d.wait_notification(lambda n: n.fields.get("STATUS", "").startswith("converged: 1 ignored"))

        # From now on the daemon leaves the NIC alone: an address added by hand stays.
        ip(t.guest, "addr", "add", "10.0.1.10/24", "dev", "eth1")
        time.sleep(0.5)
        assert addresses(t) == ["10.0.1.10"]
        assert owned_rules(t) == []
        assert d.alive()


INVALID_CONFIGS = [  # (what, config text, mode, the line logged)
    ("unknown key", "rule_priorty = 20000\n", 0o600, "rule_priorty: unknown setting"),
    ("out of range", "rule_priority = 40000\n", 0o600, "rule_priority: Input should be less"),
    ("TOML syntax", "rule_priority = = 20000\n", 0o600, "Invalid value"),
    ("group-writable", "rule_priority = 20000\n", 0o660, "writable by group or others"),
    ("deleted", None, 0, "file not found"),
    ("protocol change", "rule_priority = 10000\nprotocol = 235\n", 0o600,
     "protocol cannot change while running"),
]


def test_invalid_config_on_sighup_is_logged_and_the_running_config_kept(setup, tmp_path):
    t, eni, path, config = setup
    with configured_daemon(t, tmp_path, path, config=config, configured_within=0) as d:

        for what, text, mode, message in INVALID_CONFIGS:
            if text is None:
                config.unlink()
            else:
                write_config(config, text, mode)
            d.send_signal(signal.SIGHUP)
            d.wait_log(message)
            line = d.log_lines(message)[0]
            assert "ERROR SIGHUP: " in line, (what, line)
            if what != "protocol change":
                assert line.endswith("; keeping the running config"), (what, line)
            time.sleep(0.2)
            assert d.alive(), what
            assert eni_problems(t, eni, priority=10000) == [], (what, describe(t))
            assert {r["protocol"] for r in owned_rules(t)} == {"234"}, what

        # Still working with the old config: drift is repaired at the old priority.
        ip(t.guest, "rule", "del", "from", "10.0.1.11", "priority", "10000")
        d.wait_until(lambda: not eni_problems(t, eni, priority=10000), TIMEOUT,
                     what="drift repaired with the running config")
        assert traffic_failures(t, eni.ips) == []
