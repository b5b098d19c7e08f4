#!/usr/bin/env bash
# Build the VM test's disk image from the cached Debian 12 base rootfs (see
# lib.sh), with eni-agent installed FROM ITS .deb (packaging/build-deb.sh,
# cached per checkout) by `apt-get install ./eni-agent_*.deb`, offline (no
# network inside the chroot: the base has every dependency), configured to
# read the test's metadata file, plus the lab's guest half (tests/vm/guest).
# A scenario changes it further with ENI_AGENT_VM_CUSTOMIZE (its customize.sh).
#
# Usage: tests/vm/build-image.sh OUTDIR
#   -> OUTDIR/vm.img (raw ext4, the root filesystem), OUTDIR/vmlinuz, OUTDIR/initrd.img
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
out=$(mkdir -p "$1" && cd "$1" && pwd)

pkg_need_tools mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs unshare:util-linux
# ENI_AGENT_VM_EXTRA_PACKAGES (comma-separated): more Debian packages in the
# base rootfs (tests/vm/managers: the network managers).
base=$(vm_base_rootfs "${ENI_AGENT_VM_EXTRA_PACKAGES:-}")

# 1. eni-agent's .deb for the guest's release.
rm -rf "$out/deb"
deb=$(vm_agent_deb "$repo" "$out/deb")

# 2. The root filesystem: a copy of the base, the package installed by apt
#    inside a chroot with no network at all. The package's postinst enables
#    eni-agent.service. Its config reads the metadata service by default:
#    this guest reads a file instead.
pkg_log "installing ${deb##*/} into a copy of $base"
rm -rf "$out/rootfs"
cp -a --reflink=auto "$base" "$out/rootfs"
root=$out/rootfs
cp "$deb" "$root/tmp/"
vm_chroot "$root" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "/tmp/${deb##*/}" >&2
rm -f "$root/tmp/${deb##*/}"
sed -i 's|^#metadata = .*|metadata = "/etc/eni-agent/metadata.json"|' "$root/etc/eni-agent/config.toml"
grep -q '^metadata = "/etc/eni-agent/metadata.json"' "$root/etc/eni-agent/config.toml"

# 3. The guest's configuration and the test's guest half.
g=$here/guest
install -D -m 0644 -o root -g root "$g/metadata.json" "$root/etc/eni-agent/metadata.json"
install -D -m 0644 "$g/plan.json" "$root/etc/eni-vm/plan.json"
install -D -m 0644 "$g/10-eni-vm-primary.network" "$root/etc/systemd/network/10-eni-vm-primary.network"
install -D -m 0644 "$g/eni-vm-test.service" "$g/eni-vm-listener.service" "$g/eni-vm-cmd.service" \
    -t "$root/etc/systemd/system/"
install -D -m 0755 "$g/eni-vm-test.py" "$g/eni-vm-listener.py" "$g/eni-vm-cmd.py" \
    -t "$root/usr/local/lib/eni-vm/"
# udev takes ENI_AGENT_VM_UDEV_DELAY seconds (default 1) over each new NIC
# before naming it, as on a busy machine: deterministic, where the order of
# udev's rename and eni-agent's first change would otherwise depend on speed.
udev_delay=${ENI_AGENT_VM_UDEV_DELAY:-1}
if [ "$udev_delay" != 0 ]; then
    printf 'ACTION=="add", SUBSYSTEM=="net", PROGRAM="/bin/sleep %s"\n' "$udev_delay" \
        > "$root/etc/udev/rules.d/10-eni-vm-slow-udev.rules"
fi
echo eni-vm > "$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
# Periodic jobs, and getty-static (which waits ~20 s for a D-Bus this image
# does not have), only slow a short emulated boot down.
vm_chroot "$root" sh -ec '
    systemctl enable -q systemd-networkd.service eni-agent.service eni-vm-listener.service eni-vm-test.service
    for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
             man-db.timer dpkg-db-backup.timer getty@tty1.service getty-static.service; do systemctl mask -q "$u"; done
    passwd -qd root' >&2
rm -rf "$root/tmp/eni-agent-src" "$root/tmp/eni-agent-wheels" "$root/root/.cache"
# A scenario (failover/, managers/) changes the guest here: a script run with
# the root filesystem as its argument. The command channel (eni-vm-cmd) is
# enabled by those whose qemu has its port.
if [ -n "${ENI_AGENT_VM_CUSTOMIZE:-}" ]; then
    pkg_log "customizing the guest: $ENI_AGENT_VM_CUSTOMIZE"
    ENI_AGENT_VM_DEB=$deb bash "$ENI_AGENT_VM_CUSTOMIZE" "$root" >&2
fi

# 4. The disk image (the ext4 root filesystem itself, no partition table),
#    and the kernel and initramfs for qemu's -kernel/-initrd.
pkg_log "writing $out/vm.img"
# (trixie's kernel package may leave out the /vmlinuz links: the newest in /boot then)
cp -L "$root/vmlinuz" "$out/vmlinuz" 2>/dev/null || cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)" "$out/vmlinuz"
cp -L "$root/initrd.img" "$out/initrd.img" 2>/dev/null || cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)" "$out/initrd.img"
rm -f "$out/vm.img"
truncate -s 1536M "$out/vm.img"
mkfs.ext4 -q -F -L eni-vm-root -d "$root" "$out/vm.img"
rm -rf "$root"
pkg_log "image ready: $out/vm.img"
