#!/bin/sh
# Picks this boot's network manager from the kernel command line
# (eni_vm.manager=nm|networkd-catchall|networkd-primary|ifupdown|cloudinit) and writes
# its configuration, before any manager starts. The managers' units carry a
# ConditionKernelCommandLine= drop-in, so only the chosen one runs.
set -eu
manager=$(sed -n 's/.*eni_vm\.manager=\([a-z-]*\).*/\1/p' /proc/cmdline)
primary=00:16:3e:00:00:01
case $manager in
nm)
    ;;  # NetworkManager's default config: it takes every NIC ("Wired connection N")
networkd-catchall)
    # a catch-all as images ship it, sorting before most files but after eni-agent's 05-
    printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' \
        > /etc/systemd/network/10-catchall-dhcp.network ;;
networkd-primary)
    printf '[Match]\nMACAddress=%s\n\n[Network]\nDHCP=yes\n' "$primary" \
        > /etc/systemd/network/10-primary-dhcp.network ;;
ifupdown)
    # the primary, an ENI present at boot (eth1) and the hot-added one (eth3)
    printf 'auto eth0\niface eth0 inet dhcp\n\nallow-hotplug eth1\niface eth1 inet dhcp\n\nallow-hotplug eth3\niface eth3 inet dhcp\n' \
        > /etc/network/interfaces.d/eni-vm ;;
cloudinit)
    # cloud-init renders netplan for systemd-networkd from the metadata stand-in
    # at 100.100.100.200; eni-agent reads the same service (the package's default)
    sed -i 's|^metadata = .*|# metadata: the ECS metadata service (the stand-in)|' \
        /etc/eni-agent/config.toml ;;
*)
    echo "eni-vm-manager: no eni_vm.manager= on the kernel command line" >&2; exit 1 ;;
esac
# cloudinit-late (eni_vm.late=1): the package installed on an instance where
# cloud-init already rendered the ENIs. At the first boot the image is as it
# was before eni-agent: the package purged, so cloud-init renders DHCP for every
# NIC and networkd takes the ENIs; the host then installs the .deb on the
# running instance, and reboots it (the qemu process, and this disk, stay).
if grep -qw 'eni_vm.late=1' /proc/cmdline; then
    if [ ! -e /var/lib/eni-vm/late-first-boot ]; then
        mkdir -p /var/lib/eni-vm && touch /var/lib/eni-vm/late-first-boot
        dpkg --purge eni-agent >/var/lib/eni-vm/late-purge.log 2>&1
        manager="$manager (late: eni-agent purged for the first boot)"
    fi
fi
# networkd-reboot (eni_vm.reboot=1): its control (eni_vm.control=guard) leaves
# the boot guard nothing to go on at the reboot (this unit runs before it).
if grep -qw 'eni_vm.reboot=1' /proc/cmdline; then
    if [ ! -e /var/lib/eni-vm/booted-once ]; then
        mkdir -p /var/lib/eni-vm && touch /var/lib/eni-vm/booted-once
    elif grep -qw 'eni_vm.control=guard' /proc/cmdline; then
        rm -f /var/lib/eni-agent/kept-off-macs
        manager="$manager (control: the reboot without the boot guard's list)"
    fi
fi
# Control run (eni_vm.control=1): eni-agent's files for the managers cannot
# take effect, as if eni-agent did nothing about them; the host then expects
# the scenario to fail. networkd and dhclient: a directory where each file
# goes (the write fails). NetworkManager refuses to start with a directory
# in conf.d, so instead a later conf.d file empties unmanaged-devices and
# nmcli is a no-op for eni-agent (its reload and `device set` change nothing).
if grep -qw 'eni_vm.control=1' /proc/cmdline && [ "$manager" = cloudinit ]; then
    # cloud-init without the package's drop-in: it renders DHCP for every ENI
    rm -f /etc/cloud/cloud.cfg.d/90-eni-agent.cfg
    manager="$manager (control: without eni-agent's cloud.cfg.d drop-in)"
elif grep -qw 'eni_vm.control=1' /proc/cmdline; then
    rm -f /etc/dhcp/dhclient-enter-hooks.d/eni-agent  # the image ships the hook, as a package would
    mkdir -p /etc/dhcp/dhclient-enter-hooks.d/eni-agent
    for mac in $(python3 -c 'import json; print(" ".join(json.load(open("/etc/eni-agent/metadata.json"))["network"]["interfaces"]["macs"]))'); do
        mkdir -p "/run/systemd/network/05-eni-agent-$(echo "$mac" | tr -d :).network"
    done
    printf '[keyfile]\nunmanaged-devices=interface-name:eni-vm-none\n' \
        > /etc/NetworkManager/conf.d/99-eni-vm-control.conf
    printf '#!/bin/sh\nexit 0\n' > /usr/local/sbin/nmcli
    chmod 0755 /usr/local/sbin/nmcli
    manager="$manager (control: eni-agent's files cannot take effect)"
fi
# sync-retry (eni_vm.sync=1): eni-agent-sync runs instead of the daemon, and
# the metadata appears only when the host moves it into place.
if grep -qw 'eni_vm.sync=1' /proc/cmdline; then
    mv /etc/eni-agent/metadata.json /etc/eni-agent/metadata.json.later
fi
echo "eni-vm-manager: $manager"
