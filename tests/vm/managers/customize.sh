#!/usr/bin/env bash
# Turns tests/vm/build-image.sh's rootfs into the network-manager matrix's
# image (run by build-image.sh through ENI_AGENT_VM_CUSTOMIZE, with the rootfs
# as $1): NetworkManager, systemd-networkd and ifupdown + isc-dhclient are all
# installed; the kernel command line's eni_vm.manager= picks the one that runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
root=$1
g=$here/guest

install -D -m 0755 "$g/eni-vm-manager.sh" -t "$root/usr/local/lib/eni-vm/"
install -D -m 0644 "$g/eni-vm-manager.service" -t "$root/etc/systemd/system/"
# The single-VM test's static primary config and its scripted guest half are not ours.
rm -f "$root/etc/systemd/network/10-eni-vm-primary.network"

condition() {  # condition UNIT VALUE...: the unit runs only for these managers
    local unit=$1 dir; shift
    dir=$root/etc/systemd/system/$unit.d
    mkdir -p "$dir"
    { echo "[Unit]"; for v in "$@"; do echo "ConditionKernelCommandLine=|eni_vm.manager=$v"; done; } \
        > "$dir/eni-vm-manager.conf"
}
for u in NetworkManager.service NetworkManager-wait-online.service NetworkManager-dispatcher.service; do
    condition "$u" nm
done
for u in systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service; do
    condition "$u" networkd-catchall networkd-primary cloudinit
done
# cloud-init (eni_vm.manager=cloudinit; every other scenario boots with
# cloud-init=disabled): the AliYun datasource only, rendering netplan as Ubuntu
# images do (Debian's own cloud.cfg prefers ifupdown). eni-agent's package put
# its 90-eni-agent.cfg beside it.
test -s "$root/etc/cloud/cloud.cfg.d/90-eni-agent.cfg"
cat > "$root/etc/cloud/cloud.cfg.d/80-eni-vm.cfg" <<'EOF'
datasource_list: [ AliYun ]
datasource:
  AliYun:
    max_wait: 120
    timeout: 5
system_info:
  network:
    renderers: ['netplan', 'eni', 'sysconfig']
    activators: ['netplan', 'eni', 'network-manager', 'networkd']
# the disk is a bare ext4 image (no partition to grow): resizefs would only fail
resize_rootfs: false
growpart: {mode: 'off'}
EOF
for u in networking.service ifup@.service; do
    condition "$u" ifupdown
done

# eni_vm.sync=1: the one-shot unit instead of the daemon (the sync-retry scenario)
mkdir -p "$root/etc/systemd/system/eni-agent.service.d" "$root/etc/systemd/system/eni-agent-sync.service.d"
printf '[Unit]\nConditionKernelCommandLine=!eni_vm.sync=1\n' \
    > "$root/etc/systemd/system/eni-agent.service.d/eni-vm-manager.conf"
printf '[Unit]\nConditionKernelCommandLine=eni_vm.sync=1\n' \
    > "$root/etc/systemd/system/eni-agent-sync.service.d/eni-vm-manager.conf"

vm_chroot "$root" sh -ec '
    systemctl enable -q eni-agent-sync.service
    systemctl disable -q eni-vm-test.service
    systemctl enable -q eni-vm-manager.service eni-vm-cmd.service NetworkManager.service \
        networking.service systemd-networkd.service
    # NetworkManager-wait-online and systemd-networkd-wait-online would hold
    # network-online.target for minutes when their manager is not the one running.
    systemctl mask -q systemd-networkd-wait-online.service NetworkManager-wait-online.service
    ' >&2

# The upgrade scenario: the package installed (ENI_AGENT_VM_DEB, from
# build-image.sh) and an earlier one with a lower version (run.sh builds it).
mkdir -p "$root/var/cache/eni-vm"
cp "$ENI_AGENT_VM_DEB" "$root/var/cache/eni-vm/eni-agent-new.deb"
if [ -n "${ENI_AGENT_VM_OLD_DEB:-}" ]; then
    cp "$ENI_AGENT_VM_OLD_DEB" "$root/var/cache/eni-vm/eni-agent-old.deb"
fi

# The dhclient enter hook comes with the .deb (a conffile), so it is there
# before the first lease at boot.
test -s "$root/etc/dhcp/dhclient-enter-hooks.d/eni-agent"
