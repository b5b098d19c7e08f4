#!/usr/bin/env bash
# Install eni-agent system-wide (as root):
#   /opt/eni-agent            a venv with eni-agent from SOURCE (this checkout, or a wheel)
#   /usr/local/bin/eni-agent  on PATH
#   /etc/systemd/system/eni-agent{,-sync}.service
#   /etc/systemd/networkd.conf.d/eni-agent.conf   networkd leaves foreign rules/routes alone
#   /etc/iproute2/rt_protos.d/eni-agent.conf      `ip` prints "proto eni-agent"
#   /etc/eni-agent/config.toml                    only if absent
# Usage: scripts/install.sh [SOURCE]   then: systemctl enable --now eni-agent
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:-.}
PREFIX=${PREFIX:-/opt/eni-agent}
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

python3 -m venv "$PREFIX"
"$PREFIX/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$SOURCE"
ln -sfn "$PREFIX/bin/eni-agent" /usr/local/bin/eni-agent
install -m 0644 README.md "$PREFIX/README.md"

install -D -m 0644 systemd/eni-agent.service /etc/systemd/system/eni-agent.service
install -D -m 0644 systemd/eni-agent-sync.service /etc/systemd/system/eni-agent-sync.service
install -D -m 0644 systemd/networkd.conf.d/eni-agent.conf /etc/systemd/networkd.conf.d/eni-agent.conf
install -d -m 0755 /etc/iproute2/rt_protos.d
echo "234 eni-agent" > /etc/iproute2/rt_protos.d/eni-agent.conf
install -d -m 0755 /etc/eni-agent
[ -e /etc/eni-agent/config.toml ] || install -m 0644 examples/config.toml /etc/eni-agent/config.toml

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl try-reload-or-restart systemd-networkd.service 2>/dev/null || true
fi
echo "eni-agent $("$PREFIX/bin/eni-agent" --version | awk '{print $NF}') installed."
echo "Next: put the metadata document at /etc/eni-agent/metadata.json (mode 0644 or 0600, owned by root),"
echo "      then: systemctl enable --now eni-agent      (or eni-agent-sync for a single pass at boot)"
