#!/usr/bin/env bash
# The failover test's guest (tests/vm/failover/failover.py): build-image.sh runs this on
# the root filesystem when ENI_AGENT_VM_CUSTOMIZE names it. One image, booted
# twice (qemu -snapshot): the kernel command line tells each guest its name.
#   - eni-agent reads the metadata service, its default (no `metadata` in the
#     config): the host puts a stand-in at 100.100.100.200 on each guest's
#     primary segment;
#   - the lab's command channel (eni-vm-cmd, on a virtio-serial port: the host
#     checks the guest's kernel state through it, whatever happens to its network);
#   - eni-fo-server: TCP servers bound to the ENI's addresses (IP_FREEBIND:
#     before they exist) answering with the guest's name;
#   - not the single-VM test's own units (eni-vm-test, eni-vm-listener).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib.sh"
root=$1

rm -f "$root/etc/eni-agent/metadata.json"
cat > "$root/etc/eni-agent/config.toml" <<'TOML'
# Nothing set: eni-agent reads the ECS metadata service at http://100.100.100.200.
TOML
chmod 0644 "$root/etc/eni-agent/config.toml"
install -D -m 0755 "$here/eni-fo-server.py" -t "$root/usr/local/lib/eni-vm/"
install -D -m 0644 "$here/eni-fo-server.service" -t "$root/etc/systemd/system/"
vm_chroot "$root" sh -ec '
    systemctl disable -q eni-vm-test.service eni-vm-listener.service
    systemctl enable -q eni-vm-cmd.service eni-fo-server.service'
