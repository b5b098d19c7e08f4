#!/usr/bin/env bash
# Vagrant provisioner (runs in the VM as root): install eni-agent's .deb
# (packaging/build-deb.sh) with apt, point its config at a metadata file,
# write that document for this VM's NICs, and (re)start the daemon.
#
# Environment (set by the Vagrantfile):
#   ENI_AGENT_SRC          the synced repository (/eni-agent)
#   ENI_AGENT_ENIS         JSON list of the secondary ENIs: mac, id, cidr, gateway, ips
#   ENI_AGENT_PRIMARY_MAC  the primary NIC's MAC
# The package: the newest eni-agent_*.deb in /eni-agent-deb (ENI_AGENT_DEB_DIR
# on the host), else in the repository's dist/deb/ (build it first:
# bash packaging/build-deb.sh dist/deb bookworm). Its dependencies (python3,
# iproute2, procps) come from the box, or from Debian's mirror if it lacks them.
set -euo pipefail
src=${ENI_AGENT_SRC:-/eni-agent}
say() { echo "== eni-agent provision: $*"; }

deb=$(ls -t /eni-agent-deb/eni-agent_*.deb "$src"/dist/deb/eni-agent_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    echo "provision: no eni-agent_*.deb; on the host: bash packaging/build-deb.sh dist/deb bookworm" >&2
    exit 1
fi
say "installing ${deb##*/}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "$deb" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$deb" >/dev/null; }
eni-agent --version

# A Vagrant VM has no ECS metadata service: read the document written below.
sed -i 's|^#metadata = .*|metadata = "/etc/eni-agent/metadata.json"|' /etc/eni-agent/config.toml

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
