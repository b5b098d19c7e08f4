#!/usr/bin/env bash
# Vagrant provisioner (runs in the VM as root): install eni-agent from the
# synced repository with its own scripts/install.sh, write the metadata
# document for this VM's NICs, and enable the daemon.
#
# Environment (set by the Vagrantfile):
#   ENI_AGENT_SRC          the synced repository (/eni-agent)
#   ENI_AGENT_ENIS         JSON list of the secondary ENIs: mac, id, cidr, gateway, ips
#   ENI_AGENT_PRIMARY_MAC  the primary NIC's MAC
# With /eni-agent-wheels present (ENI_AGENT_WHEELHOUSE on the host), pip
# installs offline from it.
set -euo pipefail
src=${ENI_AGENT_SRC:-/eni-agent}
say() { echo "== eni-agent provision: $*"; }

missing=()
command -v ip >/dev/null || missing+=(iproute2)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -d /eni-agent-wheels ]; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/eni-agent-wheels
    say "installing from $src, dependencies from /eni-agent-wheels (offline)"
else
    say "installing from $src"
fi
bash "$src/scripts/install.sh" "$src"

say "writing /etc/eni-agent/metadata.json"
install -d -m 0755 /etc/eni-agent
python3 - "$ENI_AGENT_PRIMARY_MAC" > /etc/eni-agent/metadata.json.new <<'EOF'
"""The ECS-layout metadata document for this VM: the primary NIC as DHCP
configured it (the management network), and the secondary ENIs as listed."""
import ipaddress, json, os, subprocess, sys

primary_mac = sys.argv[1].lower()
# not `ip -4`: with a family filter, ip leaves the MAC out
links = json.loads(subprocess.run(["ip", "-j", "addr"], check=True,
                                  capture_output=True, text=True).stdout)
routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "default"], check=True,
                                   capture_output=True, text=True).stdout)
link = next((l for l in links if l.get("address", "").lower() == primary_mac), None)
inet = [a for a in (link or {}).get("addr_info", []) if a.get("family") == "inet"]
if not inet:
    sys.exit(f"provision: no NIC with the primary MAC {primary_mac}, or it has no IPv4 address")
addr = inet[0]
net = ipaddress.ip_interface(f"{addr['local']}/{addr['prefixlen']}").network
gateway = next((r["gateway"] for r in routes if r.get("dev") == link["ifname"]), None)
if gateway is None:
    sys.exit(f"provision: no default route via the primary NIC {link['ifname']}")

def entry(eni_id, cidr, gateway, ips):
    cidr = ipaddress.ip_network(cidr)
    return {"network-interface-id": eni_id, "primary-ip-address": ips[0], "private-ipv4s": ips,
            "netmask": str(cidr.netmask), "gateway": gateway, "vswitch-cidr-block": str(cidr),
            "vpc-cidr-block": "10.0.0.0/8", "vswitch-id": f"vsw-{eni_id}", "vpc-id": "vpc-vagrant"}

macs = {primary_mac: entry("eni-vagrant0", str(net), gateway, [addr["local"]])}
for eni in json.loads(os.environ["ENI_AGENT_ENIS"]):
    macs[eni["mac"].lower()] = entry(eni["id"], eni["cidr"], eni["gateway"], eni["ips"])
json.dump({"mac": primary_mac, "network": {"interfaces": {"macs": macs}}}, sys.stdout, indent=2)
print()
EOF
chown root:root /etc/eni-agent/metadata.json.new
chmod 0644 /etc/eni-agent/metadata.json.new
mv /etc/eni-agent/metadata.json.new /etc/eni-agent/metadata.json
eni-agent validate --metadata /etc/eni-agent/metadata.json

say "enabling eni-agent.service"
systemctl enable eni-agent.service
# restart, not start: a re-provision picks up a new install and document.
systemctl restart eni-agent.service
systemctl --no-pager --lines=0 status eni-agent.service || true
