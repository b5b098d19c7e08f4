#!/usr/bin/env bash
# Undo scripts/install.sh: stop the units, remove everything eni-agent configured
# in the kernel (only its own marked state), then its files. Keeps /etc/eni-agent.
set -euo pipefail
PREFIX=${PREFIX:-/opt/eni-agent}
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: run as root" >&2; exit 1; }
if [ -d /run/systemd/system ]; then
    systemctl disable --now eni-agent.service eni-agent-sync.service eni-agent-guard.service 2>/dev/null || true
fi
[ -x "$PREFIX/bin/eni-agent" ] && "$PREFIX/bin/eni-agent" cleanup || true
rm -f /etc/systemd/system/eni-agent.service /etc/systemd/system/eni-agent-sync.service \
      /etc/systemd/system/eni-agent-guard.service \
      /etc/systemd/networkd.conf.d/eni-agent.conf /etc/iproute2/rt_protos.d/eni-agent.conf \
      /etc/NetworkManager/conf.d/90-eni-agent-unmanaged.conf /usr/local/bin/eni-agent
rm -rf "$PREFIX" /var/lib/eni-agent
[ -d /run/systemd/system ] && systemctl daemon-reload || true
echo "eni-agent removed (config kept in /etc/eni-agent)."
