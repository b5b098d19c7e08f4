"""Log lines about an ENI as journal entries with fields, in journald's native
protocol, read back from a datagram socket the test binds (the namespace test
test_daemon_operating.py reads them back from a real systemd-journald)."""

from __future__ import annotations

import logging
import socket
import struct

import pytest

from eni_agent.journal import JournalHandler, encode, eni_fields
from eni_agent.report import EniReport, EniState


def decode(datagram: bytes) -> dict[str, str]:
    """The native protocol, as journald reads it."""
    fields, rest = {}, datagram
    while rest:
        line, sep, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            rest = after
        else:
            (size,) = struct.unpack("<Q", after[:8])
            fields[line.decode()] = after[8:8 + size].decode()
            assert after[8 + size:9 + size] == b"\n"
            rest = after[9 + size:]
    return fields


@pytest.fixture
def journal(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "socket")
    sock.bind(path)
    sock.settimeout(2)
    handler = JournalHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("eni_agent.test_journal")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: decode(sock.recv(65536))
    logger.removeHandler(handler)
    handler.close()
    sock.close()


def test_a_line_about_an_eni_carries_its_fields(journal):
    log, received = journal
    eni = EniReport("00:16:3e:00:01:01", "eni-bp1second", EniState.CONFIGURED, link="eth1")
    log.warning("eni-bp1second 00:16:3e:00:01:01 eth1: add address", extra=eni_fields(eni,
                                                                                      "repaired"))
    fields = received()
    assert {k: fields[k] for k in ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "ENI_ID", "MAC",
                                   "IFNAME", "EVENT")} == {
        "MESSAGE": "eni-bp1second 00:16:3e:00:01:01 eth1: add address", "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "eni-agent", "ENI_ID": "eni-bp1second", "MAC": "00:16:3e:00:01:01",
        "IFNAME": "eth1", "EVENT": "repaired"}


def test_a_line_about_no_eni_has_no_eni_fields(journal):
    log, received = journal
    log.info("started")
    fields = received()
    assert fields["MESSAGE"] == "started" and fields["PRIORITY"] == "6"
    assert not {"ENI_ID", "MAC", "IFNAME", "EVENT"} & set(fields)


def test_a_value_with_a_newline_is_sent_with_its_length():
    data = encode({"MESSAGE": "two\nlines", "MAC": "00:16:3e:00:01:01"})
    assert data.startswith(b"MESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n")
    assert decode(data) == {"MESSAGE": "two\nlines", "MAC": "00:16:3e:00:01:01"}


def test_without_the_journal_the_line_goes_to_stderr(tmp_path, capsys):
    handler = JournalHandler(str(tmp_path / "no-socket"))
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(logging.makeLogRecord({"msg": "still said", "levelno": logging.INFO}))
    handler.close()
    assert "still said" in capsys.readouterr().err
