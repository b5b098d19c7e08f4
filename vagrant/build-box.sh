#!/usr/bin/env bash
# Build a local Vagrant box for the libvirt provider, `local/debian12`, from the
# same cached Debian 12 base rootfs as the VM test (tests/vm/lib.sh) plus grub,
# sshd, sudo and rsync: a bootable qcow2 disk (MBR, one ext4 partition, grub),
# a `vagrant` user with Vagrant's insecure public key and passwordless sudo,
# DHCP on the first NIC only (eth0: net.ifnames=0, like the debian/* boxes),
# and what eni-agent's .deb depends on (python3, iproute2, procps: the base's),
# so the package installs without a package mirror.
#
# Usage: vagrant/build-box.sh   -> prints the path of the .box (cached: rebuilt
# only when its inputs change: BOX_STAMP, the base's inputs, this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/vm/lib.sh"
BOX_STAMP=eni-agent-box-1
BOX_EXTRA=grub-pc,openssh-server,sudo,rsync,ca-certificates
[ "$(id -u)" = 0 ] || { echo "build-box.sh: run as root" >&2; exit 1; }

pkg_need_tools mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs sfdisk:fdisk partx:util-linux \
    qemu-img:qemu-utils vagrant:vagrant
base=$(vm_base_rootfs "$BOX_EXTRA")
key=$( { echo "$BOX_STAMP"; cat "$base/../inputs" "$0"; } | sha256sum | cut -c1-12)
out=$VM_CACHE/box-$key
if [ -e "$out/debian12.box" ]; then
    echo "$out/debian12.box"
    exit 0
fi
pkg_log "building the Vagrant box in $out"
rm -rf "$out" && mkdir -p "$out"
root=$out/rootfs
cp -a --reflink=auto "$base" "$root"

# The vagrant user, sshd, DHCP on eth0, grub's defaults.
pubkey=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1)
[ -n "$pubkey" ] || pubkey=$(find / -path '*/keys/vagrant.pub' -print -quit 2>/dev/null)
[ -n "$pubkey" ] || { echo "build-box.sh: Vagrant's insecure public key not found" >&2; exit 1; }
install -D -m 0600 "$pubkey" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
cat > "$root/etc/systemd/network/10-eth0-dhcp.network" <<'EOF'
# The box's management NIC only: the other NICs are left alone.
[Match]
Name=eth0

[Network]
DHCP=ipv4
EOF
echo debian12 > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 debian12\n' > "$root/etc/hosts"
cat >> "$root/etc/default/grub" <<'EOF'
GRUB_TIMEOUT=1
GRUB_CMDLINE_LINUX="net.ifnames=0 console=ttyS0 console=tty0"
GRUB_TERMINAL="console serial"
GRUB_DISABLE_OS_PROBER=true
EOF
printf 'UseDNS no\n' > "$root/etc/ssh/sshd_config.d/vagrant.conf"
vm_chroot "$root" sh -ec '
    useradd -m -s /bin/bash -G sudo vagrant 2>/dev/null || true
    echo vagrant:vagrant | chpasswd
    chown -R vagrant:vagrant /home/vagrant
    systemctl enable -q systemd-networkd.service ssh.service
    for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer \
             getty-static.service; do systemctl mask -q "$u"; done' >&2

# The disk: MBR, one bootable partition from 1 MiB. No udev and no MSDOS
# partition parsing in this kernel: partx -a adds the partition, and its
# device node is made by hand.
disk=$out/disk.raw
truncate -s 8G "$disk"
echo 'start=2048, type=83, bootable' | sfdisk -q "$disk" >&2
loop=$(losetup --find --show "$disk")
part=${loop}p1
made_node=
cleanup_loop() {
    partx -d "$loop" 2>/dev/null || true
    losetup -d "$loop" 2>/dev/null || true
    [ -z "$made_node" ] || rm -f "$part"
}
trap cleanup_loop EXIT
for try in 1 2 3 4 5; do  # a loop device just released may still be settling
    [ -e "/sys/class/block/${loop##*/}p1" ] && break
    partx -a "$loop" 2>/dev/null || sleep 1
done
if [ ! -b "$part" ]; then
    mknod "$part" b $(tr ':' ' ' < "/sys/class/block/${loop##*/}p1/dev")
    made_node=1
fi
mkfs.ext4 -q -L root -d "$root" "$part"
unshare --mount --propagation private -- sh -ec '
    loop=$1 part=$2 mnt=$3
    mkdir -p "$mnt"
    mount "$part" "$mnt"
    mount -t proc proc "$mnt/proc"
    mount -t sysfs sys "$mnt/sys"
    mount --rbind /dev "$mnt/dev"
    uuid=$(blkid -s UUID -o value "$part")
    printf "UUID=%s / ext4 rw,errors=remount-ro 0 1\n" "$uuid" > "$mnt/etc/fstab"
    chroot "$mnt" grub-install --target=i386-pc --modules="part_msdos ext2" "$loop"
    chroot "$mnt" grub-mkconfig -o /boot/grub/grub.cfg
    # Without udev there is no /dev/disk/by-uuid, so grub-mkconfig wrote
    # root=/dev/loopNp1: point it at the filesystem instead.
    sed -i "s|root=$part |root=UUID=$uuid |" "$mnt/boot/grub/grub.cfg"
    grep -q "root=UUID=$uuid" "$mnt/boot/grub/grub.cfg"
    umount -R "$mnt"' build-box "$loop" "$part" "$out/mnt" >&2
cleanup_loop
trap - EXIT
rm -rf "$root" "$out/mnt"

pkg_log "converting to qcow2 and packing the box"
qemu-img convert -O qcow2 "$disk" "$out/box.img"
rm -f "$disk"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}\n' > "$out/metadata.json"
cat > "$out/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
tar -C "$out" -cf "$out/debian12.box.tmp" metadata.json Vagrantfile box.img
rm -f "$out/box.img"
mv "$out/debian12.box.tmp" "$out/debian12.box"
echo "$out/debian12.box"
