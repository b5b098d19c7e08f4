#!/usr/bin/env bash
# eni-agent beside each image network manager (NetworkManager, networkd with a
# catch-all and with a primary-only .network, ifupdown + isc-dhclient), in a
# real VM: builds the image with tests/vm/build-image.sh, then boots one VM per
# scenario (tests/vm/managers/matrix.py). See docs/network-managers.md.
#
# Usage (root): bash tests/vm/managers/run.sh [SCENARIO...]
# Exit 0: every scenario passed; 1: one failed (its guest log is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
vm_runner "per scenario: guest.txt, console.txt, dnsmasq.log" dnsmasq:dnsmasq-base

# The upgrade scenario needs the package of an earlier commit with a lower version:
# ENI_AGENT_VM_OLD_REV (default HEAD~10), its version set to 0.0.1.
old_deb=
if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx upgrade; then
    rm -rf "$work/old-src" && mkdir -p "$work/old-src"
    git -C "$here/../../.." archive "${ENI_AGENT_VM_OLD_REV:-HEAD~10}" | tar -x -C "$work/old-src"
    sed -i 's/^version = ".*"/version = "0.0.1"/' "$work/old-src/pyproject.toml"
    old_deb=$(vm_agent_deb "$work/old-src" "$work/old-deb")
    pkg_log "the earlier package for the upgrade scenario: $old_deb"
fi
ENI_AGENT_VM_OLD_DEB=$old_deb \
ENI_AGENT_VM_EXTRA_PACKAGES=dbus,network-manager,ifupdown,isc-dhcp-client,cloud-init,netplan.io \
ENI_AGENT_VM_CUSTOMIZE=$here/customize.sh \
    bash "$here/../build-image.sh" "$work"
pkg_log "image built in $(( $(date +%s) - VM_RUNNER_START )) s; booting the scenarios"
python3 "$here/matrix.py" "$work" "$work" "$@" --tag "$tag"
