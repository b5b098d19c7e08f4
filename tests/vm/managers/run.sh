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
[ "$(id -u)" = 0 ] || { echo "tests/vm/managers/run.sh: run as root" >&2; exit 2; }
start=$(date +%s)

vm_need_tools qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs \
    ip:iproute2 unshare:util-linux git:git dnsmasq:dnsmasq-base
python3 -c 'import ensurepip, venv' 2>/dev/null || vm_apt_install python3-venv

tag=$$
work=$VM_CACHE/managers-$tag
cleanup() {
    local rc=$?
    for ns in $(ip netns list | awk -v t="eni-vm-$tag" 'index($1, t) == 1 {print $1}'); do
        ip netns delete "$ns" 2>/dev/null || true
    done
    if [ $rc -eq 0 ]; then rm -rf "$work"; else
        rm -f "$work/vm.img"
        echo "== kept for inspection: $work (per scenario: guest.txt, console.txt, dnsmasq.log)" >&2
    fi
    vm_log "total $(( $(date +%s) - start )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run directories of earlier runs whose shell is gone.
for dir in "$VM_CACHE"/managers-[0-9]*; do
    [ -d "$dir" ] || continue
    kill -0 "${dir##*/managers-}" 2>/dev/null || rm -rf "$dir"
done

# The upgrade scenario needs the package of an earlier commit with a lower version:
# ENI_AGENT_VM_OLD_REV (default HEAD~10), its version set to 0.0.1.
old_deb=
if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx upgrade; then
    rm -rf "$work/old-src" && mkdir -p "$work/old-src"
    git -C "$here/../../.." archive "${ENI_AGENT_VM_OLD_REV:-HEAD~10}" | tar -x -C "$work/old-src"
    sed -i 's/^version = ".*"/version = "0.0.1"/' "$work/old-src/pyproject.toml"
    old_deb=$(vm_agent_deb "$work/old-src" "$work/old-deb")
    vm_log "the earlier package for the upgrade scenario: $old_deb"
fi
ENI_AGENT_VM_OLD_DEB=$old_deb \
ENI_AGENT_VM_EXTRA_PACKAGES=dbus,network-manager,ifupdown,isc-dhcp-client,cloud-init,netplan.io \
ENI_AGENT_VM_CUSTOMIZE=$here/customize.sh \
    bash "$here/../build-image.sh" "$work"
vm_log "image built in $(( $(date +%s) - start )) s; booting the scenarios"
python3 "$here/matrix.py" "$work" "$work" "$@" --tag "$tag"
