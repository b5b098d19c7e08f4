#!/usr/bin/env bash
# eni-agent in a real VM (qemu, software emulation): real systemd, real udev,
# virtio NICs on taps behind a router with strict rp_filter, a NIC hot-added
# through QMP, TCP probes from outside the guest. See tests/vm/NOTES.md.
#
# Usage (root): bash tests/vm/run.sh
# Installs what it needs (qemu-system-x86, mmdebstrap, e2fsprogs); caches the
# Debian base rootfs in ${ENI_AGENT_VM_CACHE:-/var/cache/eni-agent-vm}.
# Exit 0: passed; 1: failed (the agent's journal is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || { echo "tests/vm/run.sh: run as root" >&2; exit 2; }
start=$(date +%s)

vm_need_tools qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs \
    ip:iproute2 unshare:util-linux git:git
python3 -c 'import ensurepip, venv' 2>/dev/null || vm_apt_install python3-venv

tag=$$
work=$VM_CACHE/run-$tag
cleanup() {
    local rc=$?
    # host.py cleans up after itself; this is for a run killed on the way.
    [ -s "$work/qemu.pid" ] && kill -KILL "$(cat "$work/qemu.pid")" 2>/dev/null || true
    ip netns delete "eni-vm-$tag-client" 2>/dev/null || true
    ip netns delete "eni-vm-$tag-router" 2>/dev/null || true
    if [ $rc -eq 0 ]; then
        rm -rf "$work"
    else
        rm -f "$work/vm.img"
        echo "== kept for inspection: $work (report.txt, console.txt, qemu.log)" >&2
    fi
    vm_log "total $(( $(date +%s) - start )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces and run directories of earlier runs whose shell is gone.
for ns in $(ip netns list | awk '$1 ~ /^eni-vm-[0-9]+-(router|client)$/ {print $1}'); do
    pid=${ns#eni-vm-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" || true
done
for dir in "$VM_CACHE"/run-[0-9]*; do
    [ -d "$dir" ] || continue
    kill -0 "${dir##*/run-}" 2>/dev/null || rm -rf "$dir"
done

bash "$here/build-image.sh" "$work"
vm_log "booting the VM"
python3 "$here/host.py" "$work" "$work" --tag "$tag"
