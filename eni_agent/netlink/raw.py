"""The default backend: rtnetlink over a plain socket, requests batched.

One `send` carries many requests; the kernel handles them in order and
answers only the ones that fail, then a barrier's ACK ends the batch. Dumps
are decoded by `wire`, header and the few attributes the agent reads. This is
what keeps a cold sync of hundreds of changes near what `ip -batch` costs,
instead of one request, one ACK wait and one Python message object per change.
"""

from __future__ import annotations

import itertools
import socket

from eni_agent.netlink import wire
from eni_agent.netlink.common import (FAMILIES, KINDS, Outcome, Result, classify, observed_from,
                                      UdevGate, kernel_marks_addresses, request, touched_kinds)
from eni_agent.plan import Change
from eni_agent.state import Observed

BATCH = 128  # requests per send; their error replies must fit the receive buffer
RCVBUF = 4 << 20
REPLY_TIMEOUT = 10.0  # seconds


class RawNetlink:
    def __init__(self, protocol: int):
        self.protocol = protocol
        self.sock = wire.open_socket(rcvbuf=RCVBUF)
        # An error ACK need not echo the whole request back.
        self.sock.setsockopt(wire.SOL_NETLINK, wire.NETLINK_CAP_ACK, 1)
        # The kernel answers at once; a reply that never comes (a dropped ACK)
        # must fail the reconcile, which the daemon retries, not hang it.
        self.sock.settimeout(REPLY_TIMEOUT)
        # This session's netlink port: the kernel stamps it on the
        # notifications of the changes it makes (the daemon reads it per event).
        self.port: int = self.sock.getsockname()[0]
        self.seq = itertools.count(1)
        self._records: dict[str, list] = {}
        self.udev = UdevGate()
        self.marks_addresses = kernel_marks_addresses()
        self._touched: frozenset[str] | None = None  # set by apply() for the next observe()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawNetlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def observe(self) -> Observed:
        """Dump and decode the kernel's state.

        Right after `apply()` (the engine's verification), only the kinds of
        object the applied changes touched are read again; the rest of this
        session's previous dumps is reused. Any other observe reads it all.
        """
        only, self._touched = self._touched, None
        if only is None or not self._records:
            only = KINDS
        for kind in only:
            self._records[kind] = self._read(kind)
        r = self._records
        return observed_from(r["links"], r["addresses"], r["routes"], r["rules"], self.protocol,
                             self.udev, self.marks_addresses)

    def _read(self, kind: str) -> list:
        if kind == "links":
            return [wire.decode_link(b) for b in self._dump(wire.RTM_GETLINK, socket.AF_UNSPEC)]
        records = []
        for family in FAMILIES:
            if kind == "addresses":
                records += map(wire.decode_address, self._dump(wire.RTM_GETADDR, family))
            elif kind == "routes":
                records += [wire.decode_route(body) for body in
                            self._dump(wire.RTM_GETROUTE, family) if not wire.in_local_table(body)]
            else:
                records += map(wire.decode_rule, self._dump(wire.RTM_GETRULE, family))
        return records

    def _dump(self, msg_type: int, family: int) -> list[bytes]:
        seq = next(self.seq)
        self.sock.send(wire.dump_request(msg_type, family, seq))
        bodies = []
        while True:
            data = self.sock.recv(1 << 17)
            for kind, _flags, msg_seq, _port, body in wire.messages(data):
                if msg_seq != seq:
                    continue  # a late ACK of an earlier request
                if kind == wire.NLMSG_DONE:
                    return bodies
                if kind == wire.NLMSG_ERROR:
                    code = -wire.I32.unpack_from(body)[0]
                    if code:
                        raise OSError(code, f"netlink dump failed: {code}")
                    return bodies
                bodies.append(body)

    def apply(self, changes: list[Change]) -> list[Result]:
        results: list[Result] = []
        for start in range(0, len(changes), BATCH):
            results += self._apply_batch(changes[start:start + BATCH])
        self._touched = touched_kinds(results)
        return results

    def _apply_batch(self, changes: list[Change]) -> list[Result]:
        """One send: the requests, answered only when they fail, then a
        barrier. Reading one ACK per success would cost a recv() each, more
        than encoding the request; a success is the absence of an error
        before the barrier's ACK (and verification re-reads the kernel)."""
        by_seq: dict[int, Change] = {}
        batch = bytearray()
        for change in changes:
            seq = next(self.seq)
            msg_type, flags, payload = request(change, self.protocol, self.marks_addresses)
            batch += wire.message(msg_type, wire.NLM_F_REQUEST | flags, seq, payload)
            by_seq[seq] = change
        done = next(self.seq)
        batch += wire.barrier(done)
        self.sock.send(batch)
        codes: dict[int, int] = {}
        while done not in codes:
            for kind, _flags, seq, _port, body in wire.messages(self.sock.recv(1 << 17)):
                if kind == wire.NLMSG_ERROR and (seq in by_seq or seq == done):
                    codes[seq] = -wire.I32.unpack_from(body)[0]
        results = [classify(change, codes.get(seq, 0)) for seq, change in by_seq.items()]
        return _skip_gone_links(results)


def _skip_gone_links(results: list[Result]) -> list[Result]:
    """Once a link is found gone, later changes on it report LINK_GONE (the
    kernel said ENODEV or 'no such route' for each; one meaning is clearer)."""
    gone: set[int] = set()
    out = []
    for result in results:
        index = result.change.ifindex
        if index in gone and result.outcome is not Outcome.DONE:
            result = Result(result.change, Outcome.LINK_GONE)
        elif result.outcome is Outcome.LINK_GONE and index is not None:
            gone.add(index)
        out.append(result)
    return out
