#!/usr/bin/env bash
# Failover between two real VMs (qemu, software emulation): ENI X moved from
# VM A to VM B and back, both orders of NIC and metadata listing, a client's
# handshakes measured throughout. See failover.py and NOTES.md ("Failover").
#
# Usage (root): bash tests/vm/failover/run.sh
# The image: build-image.sh's (eni-agent installed from its .deb, built from
# this checkout), changed by guest/customize.sh; udev with no artificial
# delay. Both VMs boot it with a throw-away overlay.
# Exit 0: passed; 1: failed (both agents' journals are printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
vm_runner "a/, b/: console.txt, qemu.log, eni-agent.journal"

ENI_AGENT_VM_UDEV_DELAY=0 ENI_AGENT_VM_CUSTOMIZE=$here/guest/customize.sh \
    bash "$here/../build-image.sh" "$work"
pkg_log "booting VM A and VM B"
python3 "$here/failover.py" "$work" "$work" --tag "$tag"
