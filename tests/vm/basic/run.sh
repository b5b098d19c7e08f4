#!/usr/bin/env bash
# eni-agent in a real VM (qemu, software emulation): real systemd, real udev,
# virtio NICs on taps behind a router with strict rp_filter, a NIC hot-added
# through QMP, TCP probes from outside the guest. See tests/vm/NOTES.md.
#
# Usage (root): bash tests/vm/basic/run.sh
# Installs what it needs (qemu-system-x86, mmdebstrap, e2fsprogs); caches the
# Debian base rootfs in ${ENI_AGENT_VM_CACHE:-/var/cache/eni-agent-vm}.
# Exit 0: passed; 1: failed (the agent's journal is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
vm_runner "report.txt, console.txt, qemu.log"

bash "$here/../build-image.sh" "$work"
pkg_log "booting the VM"
python3 "$here/host.py" "$work" "$work" --tag "$tag"
