"""A guest's kernel state (guest/eni-vm-test.py's `kernel_state`: links, IPv4
addresses, rules, routes of all tables), read through the command channel or
reported by the guest, and judged for the NICs it should have configured."""

from __future__ import annotations

import ipaddress

from tests.vm.lab.channel import Guest
from tests.vm.lab.network import Nic

GUEST_TOOL = "python3 /usr/local/lib/eni-vm/eni-vm-test.py"  # build-image.sh installs it

PROTOCOL, TABLE_BASE, RULE_PRIORITY = "eni-agent", 10000, 10000


def read_state(guest: Guest) -> dict:
    return guest.json(f"{GUEST_TOOL} state")


def read_hotplug_timeline(guest: Guest, mac: str, ifname: str, since: float) -> dict:
    """When, in the guest's monotonic seconds from its journal, the PCI device
    appeared, udev renamed it and eni-agent logged its changes (since `since`)."""
    return guest.json(f"{GUEST_TOOL} timeline {mac} {ifname} {since}")


def check_state(state: dict, nics: list[Nic], when: str) -> list[str]:
    """What is wrong in a kernel state the guest reported, for the NICs it should have."""
    problems = []
    links = {l["address"].lower(): l for l in state["links"]}
    ours = [r for r in state["rules"] if r.get("protocol") == PROTOCOL]
    for nic in nics:
        link = links.get(nic.mac)
        if link is None:
            problems.append(f"{when}: no link with MAC {nic.mac} ({nic.eni_id})")
            continue
        name = link["ifname"]
        have = {(a["local"], a["prefixlen"]) for a in state["addrs"] if a["ifname"] == name}
        for addr in nic.ips:
            if (addr, nic.prefixlen) not in have:
                problems.append(f"{when}: {name} ({nic.eni_id}) lacks {addr}/{nic.prefixlen}")
        if nic.primary:
            default = [r for r in state["routes"] if r.get("dst") == "default"
                       and r.get("table", "main") == "main"]
            if not any(r.get("gateway") == nic.gateway and r.get("dev") == name for r in default):
                problems.append(f"{when}: the main table's default route is not via "
                                f"{nic.gateway} dev {name}: {default}")
            if any(r.get("src") in nic.ips for r in ours):
                problems.append(f"{when}: eni-agent put a rule on the primary NIC")
            continue
        table = TABLE_BASE + link["ifindex"]
        for addr in nic.ips:
            if not any(r.get("src") == addr and r.get("table") == str(table)
                       and r.get("priority") == RULE_PRIORITY for r in ours):
                problems.append(f"{when}: no rule {RULE_PRIORITY}: from {addr} lookup {table}")
        routes = [r for r in state["routes"] if r.get("table") == str(table)]
        if not any(r.get("dst") == "default" and r.get("gateway") == nic.gateway
                   and r.get("dev") == name for r in routes):
            problems.append(f"{when}: table {table} has no default via {nic.gateway} dev {name}")
        cidr = str(ipaddress.ip_network(f"{nic.ips[0]}/{nic.prefixlen}", strict=False))
        if not any(r.get("dst") == cidr and r.get("dev") == name for r in routes):
            problems.append(f"{when}: table {table} has no {cidr} dev {name}")
        # In main, the ENI's vswitch may only be the agent's own route (subnet_routes, on by
        # default: connections the host opens to it leave by the ENI, from its address); one
        # a network manager or DHCP client put there would send replies astray.
        in_main = [r for r in state["routes"]
                   if r.get("dst") == cidr and r.get("table", "main") == "main"]
        if any(not (r.get("protocol") == PROTOCOL and r.get("dev") == name
                    and r.get("prefsrc") == nic.ips[0]) for r in in_main):
            problems.append(f"{when}: the ENI subnet {cidr} is in the main table, not as "
                            f"eni-agent's dev {name} src {nic.ips[0]}: {in_main}")
    return problems

