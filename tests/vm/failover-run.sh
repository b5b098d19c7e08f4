#!/usr/bin/env bash
# Failover between two real VMs (qemu, software emulation): ENI X moved from
# VM A to VM B and back, both orders of NIC and metadata listing, a client's
# handshakes measured throughout. See failover.py and NOTES.md ("Failover").
#
# Usage (root): bash tests/vm/failover-run.sh
# The image: build-image.sh's (eni-agent installed from its .deb, built from
# this checkout), changed by guest-failover/customize.sh; udev with no
# artificial delay. Both VMs boot it with a throw-away overlay.
# Exit 0: passed; 1: failed (both agents' journals are printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || { echo "tests/vm/failover-run.sh: run as root" >&2; exit 2; }
start=$(date +%s)

vm_need_tools qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs \
    ip:iproute2 unshare:util-linux git:git
python3 -c 'import ensurepip, venv' 2>/dev/null || vm_apt_install python3-venv

work=$VM_CACHE/failover-$$
cleanup() {
    local rc=$?
    # failover.py cleans up after itself (its qemus die with it); this is for a run killed on the way.
    for pidfile in "$work"/a/qemu.pid "$work"/b/qemu.pid; do
        [ -s "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    done
    for ns in $(ip netns list | awk -v p="eni-vm-fo$$-" 'index($1, p) == 1 {print $1}'); do
        ip netns delete "$ns" || true
    done
    if [ $rc -eq 0 ]; then
        rm -rf "$work"
    else
        rm -f "$work/vm.img"
        echo "== kept for inspection: $work (a/, b/: console.txt, qemu.log, eni-agent.journal)" >&2
    fi
    vm_log "total $(( $(date +%s) - start )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for dir in "$VM_CACHE"/failover-[0-9]*; do
    [ -d "$dir" ] || continue
    kill -0 "${dir##*/failover-}" 2>/dev/null || rm -rf "$dir"
done

ENI_AGENT_VM_UDEV_DELAY=0 ENI_AGENT_VM_CUSTOMIZE=$here/guest-failover/customize.sh \
    bash "$here/build-image.sh" "$work"
vm_log "booting VM A and VM B"
python3 "$here/failover.py" "$work" "$work" --tag "fo$$"
