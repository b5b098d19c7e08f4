"""The floor for any Python agent on this stack: start CPython, read the
document, send the same netlink requests as `ip -batch`, encoded by pyroute2
and batched as eni-agent sends them, exit.

No validation, no observing, no plan, no verification: only what issuing the
changes costs in a Python process. Run in the guest namespace by run.py; it
takes the document and the ENI interface names in order (eth1, eth2, ...).
"""

import json
import socket
import sys
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRSocket
from pyroute2.netlink import NLMSG_ERROR

from eni_agent.netlink.messages import barrier, request
from eni_agent.plan import Action, Change
from eni_agent.state import Address, Link, Route, Rule

PROTOCOL, PRIORITY, BATCH = 234, 10000, 128


def changes(doc: dict, names: list):
    macs = doc["network"]["interfaces"]["macs"]
    secondary = [m for m in sorted(macs) if m != doc["mac"]]
    for name, mac in zip(names, secondary):
        eni, index = macs[mac], socket.if_nametoindex(name)
        table = 20000 + index
        cidr = IPv4Network(eni["vswitch-cidr-block"])
        ips = [IPv4Address(ip) for ip in eni["private-ipv4s"]]
        yield Change(Action.LINK_UP, Link(index, name, mac, False))
        for ip in ips:
            yield Change(Action.ADD, Address(index, ip, cidr.prefixlen))
        yield Change(Action.ADD, Route(table, cidr, index))
        yield Change(Action.ADD, Route(table, IPv4Network("0.0.0.0/0"), index,
                                       IPv4Address(eni["gateway"])))
        for ip in ips:
            yield Change(Action.ADD, Rule(PRIORITY, ip, table))


def main() -> None:
    doc = json.loads(open(sys.argv[1], "rb").read())
    sock = IPRSocket(groups=0)
    sock.bind(groups=0)
    todo = list(changes(doc, sys.argv[2].split(",")))
    seq = 0
    for start in range(0, len(todo), BATCH):
        batch = bytearray()
        for change in todo[start:start + BATCH]:
            seq += 1
            msg = request(change, PROTOCOL)
            msg["header"]["sequence_number"] = seq
            msg.encode()
            batch += msg.data
        seq += 1
        done = barrier()  # requests answer only on failure; this ends the batch
        done["header"]["sequence_number"] = seq
        done.encode()
        sock.socket.send(batch + done.data)
        while True:
            replies = sock.get()
            if any(m["header"]["type"] == NLMSG_ERROR and m["header"]["error"] is not None
                   for m in replies):
                sys.exit("floor: the kernel refused a request")
            if any(m["header"]["sequence_number"] == seq for m in replies):
                break


if __name__ == "__main__":
    main()
