"""The floor for any Python agent: start CPython, read the document, send the
same netlink requests as `ip -batch` (batched as eni-agent does), exit.

No validation, no observing, no plan, no verification: only what issuing the
changes costs in a Python process. Run in the guest namespace by run.py; it
takes the document and the ENI interface names in order (eth1, eth2, ...).
"""

import importlib.util
import json
import socket
import sys
from ipaddress import IPv4Address, IPv4Network

# The checkout's wire.py alone (not the eni_agent package): the message formats.
_spec = importlib.util.spec_from_file_location("wire", f"{sys.argv[3]}/eni_agent/netlink/wire.py")
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)

PROTOCOL, PRIORITY, BATCH = 234, 10000, 128


def requests(doc: dict, names: list[str]):
    macs = doc["network"]["interfaces"]["macs"]
    secondary = [m for m in sorted(macs) if m != doc["mac"]]
    for name, mac in zip(names, secondary):
        eni, index = macs[mac], socket.if_nametoindex(name)
        table = 20000 + index
        cidr = IPv4Network(eni["vswitch-cidr-block"])
        ips = [IPv4Address(ip) for ip in eni["private-ipv4s"]]
        yield wire.link_up(index)
        for ip in ips:
            yield wire.address(True, index, ip, cidr.prefixlen, PROTOCOL, 0x200)
        yield wire.route("add", table, cidr, index, None, PROTOCOL)
        yield wire.route("add", table, IPv4Network("0.0.0.0/0"), index,
                         IPv4Address(eni["gateway"]), PROTOCOL)
        for ip in ips:
            yield wire.rule(True, PRIORITY, ip, table, PROTOCOL)


def main() -> None:
    doc = json.loads(open(sys.argv[1], "rb").read())
    sock = wire.open_socket(rcvbuf=4 << 20)
    todo = list(requests(doc, sys.argv[2].split(",")))
    seq = 0
    for start in range(0, len(todo), BATCH):
        batch = bytearray()
        for msg_type, flags, payload in todo[start:start + BATCH]:
            seq += 1
            batch += wire.message(msg_type, wire.NLM_F_REQUEST | flags, seq, payload)
        seq += 1
        batch += wire.barrier(seq)  # requests answer only on failure; this ends the batch
        sock.send(batch)
        while True:
            replies = list(wire.messages(sock.recv(1 << 17)))
            if any(kind == wire.NLMSG_ERROR and wire.I32.unpack_from(body)[0]
                   for kind, _flags, _seq, _port, body in replies):
                sys.exit("floor: the kernel refused a request")
            if any(reply_seq == seq for _kind, _flags, reply_seq, _port, _body in replies):
                break


if __name__ == "__main__":
    main()
