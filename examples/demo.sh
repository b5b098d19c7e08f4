#!/usr/bin/env bash
# Install eni-agent from this checkout, then run its main job on the shipped
# example (examples/metadata.json) inside throwaway network namespaces that
# look like an ECS VM: eth0 primary NIC, eth1 a secondary ENI, a router with
# strict rp_filter and a host behind it. Nothing on this machine's own network
# is touched; the namespaces are removed at the end. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
bootstrap_system_packages
bootstrap_venv .
AGENT=.venv/bin/eni-agent
PY=.venv/bin/python
G=eni-demo-guest R=eni-demo-router H=eni-demo-host

cleanup() { for ns in $G $R $H; do ip netns del "$ns" 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup
for ns in $G $R $H; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

# router: gateway .253 of both vswitches, strict reverse-path filtering
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
ip -n $R link add r0 type veth peer name eth0 netns $G address 00:16:3e:00:00:01
ip -n $R link add r1 type veth peer name eth1 netns $G address 00:16:3e:00:01:01
ip -n $R link add rh type veth peer name eth0 netns $H
ip -n $R addr add 10.0.0.253/24 dev r0; ip -n $R addr add 10.0.1.253/24 dev r1
ip -n $R addr add 192.168.100.1/24 dev rh
for l in r0 r1 rh; do ip -n $R link set $l up; done
ip -n $H addr add 192.168.100.2/24 dev eth0; ip -n $H link set eth0 up
ip -n $H route add default via 192.168.100.1
# guest: eth0 configured as the image's DHCP client would; eth1 left alone
ip -n $G addr add 10.0.0.5/24 dev eth0; ip -n $G link set eth0 up
ip -n $G route add default via 10.0.0.253 proto dhcp

# handshake NS SRC DST: a TCP connection from NS to DST:8080, bound to SRC
listen() { ip netns exec $G $PY -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind((sys.argv[1],8080)); s.listen(); s.settimeout(3)
try: c,_=s.accept(); c.sendall(b"hello from "+sys.argv[1].encode())
except OSError: pass' "$1" & sleep 0.3; }
connect() { ip netns exec $H $PY -c '
import socket,sys
try: print("   ", socket.create_connection((sys.argv[1],8080),timeout=2).recv(64).decode(), "-> OK")
except OSError as e: print("    no answer from", sys.argv[1], "->", e)' "$1"; wait; }

echo; echo "### 1. the metadata document (examples/metadata.json) is valid:"
$AGENT validate --metadata examples/metadata.json
echo; echo "### 2. dry run: the plan, nothing changed"
ip netns exec $G $AGENT sync --metadata examples/metadata.json --dry-run
echo; echo "### 3. before eni-agent, with the address added by hand, host -> 10.0.1.10 fails (reply leaves via eth0; the router drops it):"
ip -n $G link set eth1 up; ip -n $G addr add 10.0.1.10/24 dev eth1
listen 10.0.1.10; connect 10.0.1.10
ip -n $G addr del 10.0.1.10/24 dev eth1
echo; echo "### 4. eni-agent sync"
ip netns exec $G $AGENT sync --metadata examples/metadata.json
echo; echo "### 5. the result: ip rule / ip route show table 10003 (guest)"
ip -n $G rule; ip -n $G route show table all | grep -E 'table 100' || true
echo; echo "### 6. host -> each ENI address now answers through eth1:"
for ip in 10.0.1.10 10.0.1.11; do listen $ip; connect $ip; done
echo; echo "### 7. a second run changes nothing"
ip netns exec $G $AGENT sync --metadata examples/metadata.json
echo; echo "### 8. cleanup removes what eni-agent made, and only that"
ip netns exec $G $AGENT cleanup
ip -n $G rule
