#!/usr/bin/env bash
# Check, in the VM, that eni-agent did its job, reading the kernel directly
# (ip -j), not trusting the agent: for every secondary ENI of
# /etc/eni-agent/metadata.json, its NIC is UP with every address; a rule
# `from <ip> lookup <table>` per address at priority 10000; the table holds the
# vswitch subnet and a default route via the gateway, on that NIC; the subnet
# is NOT in the main table; the service is active; `eni-agent status` agrees.
# Prints every finding; exits 1 (loudly) if anything is wrong.
set -uo pipefail
METADATA=${1:-/etc/eni-agent/metadata.json}

fail=0
ok() { echo "  ok    $*"; }
bad() { echo "  FAIL  $*"; fail=1; }

echo "== eni-agent verify"
state=$(systemctl is-active eni-agent.service)
[ "$state" = active ] && ok "eni-agent.service is active" || bad "eni-agent.service is $state"
systemctl is-enabled -q eni-agent.service && ok "eni-agent.service is enabled" \
    || bad "eni-agent.service is not enabled"

python3 - "$METADATA" <<'EOF' || fail=1
import ipaddress, json, subprocess, sys

TABLE_BASE, PRIORITY = 10000, 10000
def ip_json(*args):
    out = subprocess.run(["ip", "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []

doc = json.load(open(sys.argv[1]))
primary = doc["mac"].lower()
# not `ip -4 addr`: with a family filter, ip leaves the MAC out
links = {l["address"].lower(): l for l in ip_json("addr") if l.get("address")}
rules = ip_json("-4", "rule")
routes = ip_json("-4", "route", "show", "table", "all")
failed = False

def check(cond, text):
    global failed
    print(f"  {'ok  ' if cond else 'FAIL'}  {text}")
    failed |= not cond

for mac, eni in sorted(doc["network"]["interfaces"]["macs"].items()):
    mac = mac.lower()
    if mac == primary:
        continue
    link = links.get(mac)
    if link is None:
        check(False, f"{eni['network-interface-id']} {mac}: no NIC with this MAC")
        continue
    name, table = link["ifname"], TABLE_BASE + link["ifindex"]
    cidr = ipaddress.ip_network(eni["vswitch-cidr-block"])
    print(f"-- {eni['network-interface-id']} {mac}: {name}, table {table}, {cidr}")
    check("UP" in link.get("flags", []), f"{name} is up")
    have = {(a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
            if a.get("family") == "inet"}
    for addr in eni["private-ipv4s"]:
        check((addr, cidr.prefixlen) in have, f"{name} has {addr}/{cidr.prefixlen}")
        check(any(r.get("src") == addr and r.get("table") == str(table)
                  and r.get("priority") == PRIORITY for r in rules),
              f"rule {PRIORITY}: from {addr} lookup {table}")
    mine = [r for r in routes if r.get("table") == str(table)]
    check(any(r.get("dst") == "default" and r.get("gateway") == eni["gateway"]
              and r.get("dev") == name for r in mine),
          f"table {table}: default via {eni['gateway']} dev {name}")
    check(any(r.get("dst") == str(cidr) and r.get("dev") == name for r in mine),
          f"table {table}: {cidr} dev {name}")
    check(not any(r.get("dst") == str(cidr) and r.get("table", "main") == "main" for r in routes),
          f"{cidr} is not in the main table")
sys.exit(1 if failed else 0)
EOF

if out=$(eni-agent status 2>&1); then
    ok "eni-agent status: in sync"
else
    bad "eni-agent status (exit $?):"
    echo "$out" | sed 's/^/        /'
fi

if [ $fail -ne 0 ]; then
    echo "== eni-agent verify: FAILED. The agent's journal:"
    journalctl -u eni-agent --no-pager -n 60 || true
    exit 1
fi
echo "== eni-agent verify: all good"
