#!/usr/bin/env bash
# Install eni-agent system-wide (as root):
#   /opt/eni-agent            a venv with eni-agent from SOURCE (this checkout, or a wheel)
#   /usr/local/bin/eni-agent  on PATH
#   /etc/systemd/system/eni-agent{,-sync,-guard}.service (the guard enabled: it keeps
#                            the network managers off the ENIs early at each boot)
#   /etc/systemd/networkd.conf.d/eni-agent.conf   networkd leaves foreign rules/routes alone
#   /etc/iproute2/rt_protos.d/eni-agent.conf      `ip` prints "proto eni-agent"
#   /etc/eni-agent/config.toml                    only if absent (packaging/config.toml:
#                                                 the ECS metadata service)
# Usage: scripts/install.sh [SOURCE]   then: systemctl enable --now eni-agent
# PYTHON: the interpreter for the venv (default python3; 3.9 or newer), e.g.
# PYTHON=python3.11 on an EL8-like image whose python3 is 3.6.
# Debian/Ubuntu and EL9-like images: prefer the packages (packaging/, docs/packaging.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:-.}
PREFIX=${PREFIX:-/opt/eni-agent}
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
    { echo "install.sh: $PYTHON is missing or older than 3.9 (set PYTHON=python3.9 or newer)" >&2; exit 1; }
"$PYTHON" -m venv "$PREFIX"
"$PREFIX/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$SOURCE"
ln -sfn "$PREFIX/bin/eni-agent" /usr/local/bin/eni-agent
install -m 0644 README.md "$PREFIX/README.md"

install -D -m 0644 systemd/eni-agent.service /etc/systemd/system/eni-agent.service
install -D -m 0644 systemd/eni-agent-sync.service /etc/systemd/system/eni-agent-sync.service
install -D -m 0644 systemd/eni-agent-guard.service /etc/systemd/system/eni-agent-guard.service
install -D -m 0644 systemd/networkd.conf.d/eni-agent.conf /etc/systemd/networkd.conf.d/eni-agent.conf
install -d -m 0755 /etc/iproute2/rt_protos.d
echo "234 eni-agent" > /etc/iproute2/rt_protos.d/eni-agent.conf
install -d -m 0755 /etc/eni-agent
[ -e /etc/eni-agent/config.toml ] || install -m 0644 packaging/config.toml /etc/eni-agent/config.toml

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable -q eni-agent-guard.service
    # restart, not reload: networkd reads networkd.conf.d only when it starts.
    systemctl try-restart systemd-networkd.service 2>/dev/null || true
fi
echo "eni-agent $("$PREFIX/bin/eni-agent" --version | awk '{print $NF}') installed."
echo "Next: systemctl enable --now eni-agent      (or eni-agent-sync for a single pass at boot)"
echo "      It reads the ECS metadata service; for a file instead, set metadata = \"PATH\" in /etc/eni-agent/config.toml."
