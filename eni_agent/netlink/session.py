"""A netlink session on pyroute2: dumps, batched requests, and (for the
daemon) a picture of the kernel kept current by notifications.

Requests: one `send` carries up to `BATCH` pyroute2-encoded requests that the
kernel answers only when they fail, then a no-op barrier whose ACK says they
are all done. Reading one ACK per success would cost more than encoding the
request; verification re-reads the kernel anyway.

Dumps: kernel-side filters (strict checking) keep pyroute2 from decoding what
the agent never reads: addresses and routes can be dumped per link, the local
table per link and type. Routes are dumped in one pass whose foreign routes
of `main` and `local` pyroute2's parser drops undecoded (`marshal.RouteFilter`),
and so are their notifications: 100,000 routes in `main` cost a dump ~60 ms,
not seconds and hundreds of MB.

Lookups (`route_lookups`): `RTM_GETROUTE` requests answered as the kernel
routes a packet, many in one send; the verification's questions. The answers
are kept until the records change (the daemon asks again only then).

`follow=True` (the daemon): a second socket subscribed to link, address,
route and rule notifications keeps the dumped records current, so a
reconcile triggered by one event decodes that event, not the whole kernel,
as NetworkManager and ifupdown2 keep their netlink caches. A full dump is
taken at start, after lost notifications (ENOBUFS) and on `resync()`. The
kernel flushes IPv4 routes of a link that goes down or loses its last address
without a word: those links' routes are read again.
"""

from __future__ import annotations

import errno
import itertools
import socket
from typing import Dict, List, Optional, Set, Tuple

from pyroute2 import IPRSocket
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_GETRULE
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from eni_agent.host import UdevGate, kernel_has_altnames, kernel_marks_addresses
from eni_agent.netlink.cache import Records
from eni_agent.netlink.events import GROUPS, OVERFLOW, Event, notification
from eni_agent.netlink.marshal import RouteFilter
from eni_agent.netlink.messages import (RT_TABLE_LOCAL, RTN_LOCAL, address_record, barrier,
                                        link_record, lookup_record, lookup_request, request,
                                        route_record, rule_record)
from eni_agent.netlink.outcomes import (KINDS, Result, classify, skip_gone_links,
                                        touched_kinds)
from eni_agent.ownership import observed_from
from eni_agent.plan import Change
from eni_agent.state import IP, Address, AltName, Link, Observed

BATCH = 128  # requests per send; their error replies must fit the receive buffer
RCVBUF = 4 << 20
SO_RCVBUFFORCE = 33
REPLY_TIMEOUT = 10.0  # seconds: the kernel answers at once; a lost reply must not hang us


def _open(protocol: int, groups: int = 0) -> IPRSocket:
    sock = IPRSocket(strict_check=True, groups=groups)
    sock.set_marshal(RouteFilter(protocol))
    try:  # past rmem_max where CAP_NET_ADMIN allows: a burst must not overflow
        sock.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except OSError:
        pass
    sock.bind(groups=groups)
    return sock


class Netlink:
    """A netlink session in the current network namespace."""

    def __init__(self, protocol: int, follow: bool = False):
        self.protocol = protocol
        self.sock = _open(protocol)
        self.sock.socket.settimeout(REPLY_TIMEOUT)
        # This session's netlink port: the kernel stamps it on the
        # notifications of the changes it makes (the daemon ignores those).
        self.port: int = self.sock.socket.getsockname()[0]
        self.seq = itertools.count(1)
        self.udev = UdevGate()
        self.marks_addresses = kernel_marks_addresses()
        self.has_altnames = kernel_has_altnames()
        self.records = Records()
        self.stale: Set[str] = set(KINDS)  # kinds to dump in full at the next observe
        self.events: Optional[IPRSocket] = None
        self.pending: List[Event] = []  # read while observing, for the next `drain()`
        self.answers: Dict[tuple, object] = {}  # lookups' answers, while `answered_at` holds
        self.answered_at: tuple = ()
        if follow:
            # Subscribed before the first dump, so no change slips between.
            self.events = _open(protocol, GROUPS)
            self.events.socket.setblocking(False)

    def close(self) -> None:
        for sock in (self.sock, self.events):
            if sock is not None:
                sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fileno(self) -> int:
        """The notification socket, for a selector (`follow=True` only)."""
        return self.events.socket.fileno()

    # -- observing -------------------------------------------------------------

    def resync(self) -> None:
        """Forget what was read: the next observe dumps everything."""
        self.stale = set(KINDS)

    def observe(self) -> Observed:
        """The kernel's state as the agent sees it.

        Without notifications, each observe dumps the kinds of object that may
        have changed: all of them, except right after `apply()` (the engine's
        verification), when only the kinds the applied changes touched are read
        again. Following notifications, the records are current already; only
        what the kernel changes silently is read again.
        """
        if self.events is not None:
            self.pending += self._drain()
        for kind in self.stale:
            self.records.load(kind, self._dump_all(kind))
        for index in sorted(self.records.stale_links):
            self._reread_link(index)
        self.stale = set() if self.events is not None else set(KINDS)
        r = self.records
        return observed_from(r.values("links"), r.values("addresses"), r.values("routes"),
                             r.values("rules"), self.protocol, self.udev, self.marks_addresses,
                             self.has_altnames)

    def _dump_all(self, kind: str) -> list:
        if kind == "links":
            return [link_record(m) for m in self._dump(RTM_GETLINK, ifinfmsg())]
        if kind == "addresses":
            return [address_record(m) for m in self._dump(RTM_GETADDR, ifaddrmsg())]
        if kind == "rules":
            return [rule_record(m) for m in self._dump(RTM_GETRULE, fibmsg())]
        return [route_record(m) for m in self._dump(RTM_GETROUTE, _route_filter())]

    def _reread_link(self, index: int) -> None:
        """Read again one link's addresses and routes (kernel-filtered dumps)."""
        query = ifaddrmsg()
        query["index"] = index
        addresses = [address_record(m) for m in self._dump(RTM_GETADDR, query)]
        routes = [route_record(m) for m in self._dump(RTM_GETROUTE, _route_filter(oif=index))]
        self.records.load_link(index, addresses, routes)

    def _dump(self, msg_type: int, query, decode: str = "filtered") -> list:
        """The messages of a dump; `decode`: "filtered" (foreign routes of
        main and local skipped), "whole", or "count" (a list of one number)."""
        seq = next(self.seq)
        marshal = self.sock.marshal
        if decode == "whole":
            marshal.whole.add(seq)
        elif decode == "count":
            marshal.counted[seq] = 0
        try:
            found = self._dump_replies(msg_type, query, seq)
        finally:
            marshal.whole.discard(seq)
            counted = marshal.counted.pop(seq, 0)
        return [counted] if decode == "count" else found

    def _dump_replies(self, msg_type: int, query, seq: int) -> list:
        self.sock.put(query, msg_type, NLM_F_REQUEST | NLM_F_DUMP, msg_seq=seq)
        found = []
        while True:
            for m in self.sock.get():
                header = m["header"]
                if header["sequence_number"] != seq:
                    continue  # a late reply to an earlier request
                if header["type"] == NLMSG_DONE:
                    return found
                if header["type"] == NLMSG_ERROR:
                    error = header["error"]
                    if error is not None:
                        if error.code == errno.ENODEV:
                            return found  # the link of a filtered dump is gone
                        raise OSError(error.code, f"netlink dump failed: {error}")
                    return found
                found.append(m)

    # -- changing ----------------------------------------------------------------

    def apply(self, changes: List[Change]) -> List[Result]:
        results: List[Result] = []
        for start in range(0, len(changes), BATCH):
            results += self._apply_batch(changes[start:start + BATCH])
        results = skip_gone_links(results)
        touched = touched_kinds(results)
        if self.events is None:
            self.stale = set(KINDS) if touched is None else set(touched)
        elif touched is None:
            self.stale = set(KINDS)
        else:
            # Route and rule changes come back as notifications before the
            # barrier's ACK; an IPv6 address's may come later (DAD's work
            # queue), and routes vanish silently with a link's last address.
            self.records.stale_links |= {r.change.ifindex for r in results
                                         if isinstance(r.change.target, (Address, Link))}
            if any(isinstance(r.change.target, AltName) for r in results):
                self.stale.add("links")  # the kernel's notification of it may come later
        return results

    def _apply_batch(self, changes: List[Change]) -> List[Result]:
        by_seq: Dict[int, Change] = {}
        batch = bytearray()
        for change in changes:
            msg = request(change, self.protocol, self.marks_addresses)
            seq = next(self.seq)
            msg["header"]["sequence_number"] = seq
            msg.encode()
            batch += msg.data
            by_seq[seq] = change
        done = barrier()
        done["header"]["sequence_number"] = next(self.seq)
        done.encode()
        batch += done.data
        self.sock.socket.send(batch)
        codes: Dict[int, int] = {}
        last = done["header"]["sequence_number"]
        while last not in codes:
            for m in self.sock.get():
                header = m["header"]
                seq = header["sequence_number"]
                if header["type"] == NLMSG_ERROR and (seq in by_seq or seq == last):
                    codes[seq] = header["error"].code if header["error"] is not None else 0
        return [classify(change, codes.get(seq, 0)) for seq, change in by_seq.items()]

    # -- asking the kernel (verification) --------------------------------------

    def rule_records(self) -> list:
        """The rules as last observed (`messages.RuleRecord`), in the kernel's order."""
        return list(self.records.values("rules"))

    def route_lookups(self, questions: List[Tuple[Optional[IP], IP]]) -> list:
        """How the kernel routes a packet from `src` (None: no source chosen
        yet) to `dst`, for each (src, dst): a `messages.LookupRecord`."""
        answers = self._answers()
        todo = [q for q in dict.fromkeys(questions) if q not in answers]
        for start in range(0, len(todo), BATCH):
            answers.update(_lookups(self.sock, self.seq, todo[start:start + BATCH]))
        return [answers[q] for q in questions]

    def local_route_count(self, index: int) -> int:
        """How many `local` routes through this link the local table holds
        (counted, not decoded: one per address on it when all is well)."""
        return self._asked(("count", index), lambda: self._dump(
            RTM_GETROUTE, _local_routes(index), decode="count")[0])

    def local_route_ips(self, index: int) -> frozenset:
        """The addresses of the `local` routes through this link."""
        return self._asked(("ips", index), lambda: frozenset(
            route_record(m).dst for m in
            self._dump(RTM_GETROUTE, _local_routes(index), decode="whole")))

    def forget_answers(self) -> None:
        self.answered_at = ()

    def _asked(self, question: tuple, ask):
        answers = self._answers()
        if question not in answers:
            answers[question] = ask()
        return answers[question]

    def _answers(self) -> dict:
        """The answers still current: none once the records changed, or a
        notification of the local table's (dropped undecoded) came."""
        now = (self.records.generation, self.sock.marshal.local_changes,
               self.events.marshal.local_changes if self.events is not None else 0)
        if now != self.answered_at:
            self.answers, self.answered_at = {}, now
        return self.answers

    # -- notifications (follow=True) ---------------------------------------------

    def drain(self) -> List[Event]:
        """Every notification pending, applied to the records; never blocks.
        Lost notifications (ENOBUFS) yield an `overflow` event and a full
        dump at the next observe."""
        events, self.pending = self.pending + self._drain(), []
        return events

    def _drain(self) -> List[Event]:
        events: List[Event] = []
        while True:
            try:
                messages = self.events.get()
            except BlockingIOError:
                return events
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.stale = set(KINDS)
                events.append(OVERFLOW)
                continue
            for m in messages:
                n = notification(m)
                if n is not None:
                    self.records.note(n)
                    events.append(n.event)


def _lookups(sock: IPRSocket, seq, questions: list) -> dict:
    """Route lookups sent at once; their answers by question (`seq`: the
    session's sequence numbers)."""
    marshal = sock.marshal
    by_seq: Dict[int, tuple] = {}
    batch = bytearray()
    for question in questions:
        number = next(seq)
        msg = lookup_request(*question)
        msg["header"]["sequence_number"] = number
        msg.encode()
        batch += msg.data
        by_seq[number] = question
    marshal.whole.update(by_seq)  # their answers come from any table: decode them whole
    try:
        sock.socket.send(batch)
        answers: dict = {}
        while len(answers) < len(by_seq):
            for m in sock.get():
                question = by_seq.get(m["header"]["sequence_number"])
                if question is not None:
                    answers[question] = lookup_record(m)
    finally:
        marshal.whole.difference_update(by_seq)
    return answers


def _local_routes(index: int):
    """The local table's `local` routes through one link (kernel-filtered)."""
    return _route_filter(type=RTN_LOCAL, oif=index, table=RT_TABLE_LOCAL)


def _route_filter(type: int = 0, oif: Optional[int] = None,  # noqa: A002 (rtmsg's name)
                  table: Optional[int] = None):
    """A route dump request the kernel filters (strict checking): by type, by
    output link, by table."""
    query = rtmsg()
    query["family"] = socket.AF_UNSPEC  # both (pyroute2's rtmsg says AF_INET by default)
    query["type"] = type
    attrs = [] if oif is None else [("RTA_OIF", oif)]
    if table is not None:
        attrs.append(("RTA_TABLE", table))
    query["attrs"] = attrs
    return query
