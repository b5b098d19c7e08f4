#!/usr/bin/env bash
# `vagrant up --provider=libvirt` for real, on a machine without systemd as
# PID 1, without a usable /dev/kvm and without a box registry (see
# ../../shared/VM-TESTING.md section 3): installs vagrant, vagrant-libvirt and
# libvirt; builds the local box (build-box.sh, cached); starts virtlogd and
# libvirtd by hand inside a network namespace (their bridges, dnsmasq and NAT
# stay in there, and so does vagrant, which must reach the VM); brings the VM
# up with libvirt's "qemu" driver (software emulation), which provisions it
# (vagrant/provision.sh: install the .deb, metadata, enable)
# and runs vagrant/verify.sh; then probes each ENI address over TCP from the
# namespace, with strict rp_filter there; then destroys the VM and stops
# what it started.
#
# The VM has no way out of the namespace: it installs eni-agent's .deb
# (ENI_AGENT_DEB_DIR, built here and cached by tests/vm/lib.sh's
# vm_agent_deb) offline, its dependencies being in the box.
#
# Usage (root): bash vagrant/ci-up.sh      ENI_AGENT_KEEP=1 keeps the VM up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$repo/tests/vm/lib.sh"
[ "$(id -u)" = 0 ] || { echo "ci-up.sh: run as root" >&2; exit 1; }
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

pkg_need_tools vagrant:vagrant libvirtd:libvirt-daemon-system virtlogd:libvirt-daemon-system \
    qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils rsync:rsync ssh:openssh-client \
    dnsmasq:dnsmasq-base
vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt || pkg_apt_install vagrant-libvirt
pkg_log "tools ready ($(elapsed))"

box=$(bash "$here/build-box.sh")
pkg_log "box ready: $box ($(elapsed))"

work=$VM_CACHE/vagrant
mkdir -p "$work"
export VAGRANT_HOME=$work/home VAGRANT_DOTFILE_PATH=$work/dot VAGRANT_CWD=$here
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt
export ENI_AGENT_LIBVIRT_DRIVER=${ENI_AGENT_LIBVIRT_DRIVER:-qemu}
export ENI_AGENT_SERIAL_LOG=$work/serial.log
if [ "$(cat "$work/box.added" 2>/dev/null)" != "$box" ]; then
    vagrant box add --force --name local/debian12 "$box"
    echo "$box" > "$work/box.added"
fi

# Offline install in the VM: the package, its dependencies being in the box.
export ENI_AGENT_DEB_DIR=$work/deb
rm -rf "$ENI_AGENT_DEB_DIR"
vm_agent_deb "$repo" "$ENI_AGENT_DEB_DIR" >/dev/null

ns=eni-vagrant
in_ns() { ip netns exec "$ns" "$@"; }
cleanup() {
    local rc=$?
    if [ "${ENI_AGENT_KEEP:-0}" = 1 ] && [ $rc -eq 0 ]; then
        pkg_log "kept: the VM, libvirtd and namespace $ns (ENI_AGENT_KEEP=1)"
        return
    fi
    if [ -e /run/libvirt/libvirt-sock ]; then
        in_ns vagrant destroy -f >/dev/null 2>&1 || true
    fi
    for pidfile in /run/libvirtd.pid /run/virtlogd.pid; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
    ip netns delete "$ns" 2>/dev/null || true
    pkg_log "total $(elapsed) (exit $rc)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip -n "$ns" link set lo up
fi
if ! { [ -s /run/libvirtd.pid ] && kill -0 "$(cat /run/libvirtd.pid)" 2>/dev/null; }; then
    in_ns virtlogd -d
    in_ns libvirtd -d
    for _ in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.2; done
fi
pkg_log "libvirtd up in namespace $ns ($(elapsed))"

up_start=$(date +%s)
# (its progress bars, one line per percent, filtered out)
in_ns vagrant up --provider=libvirt | sed -u 's/\x1b\[KProgress:[^\x1b]*//g'
up_took=$(( $(date +%s) - up_start ))
pkg_log "vagrant up (boot + provision + verify.sh) took ${up_took} s"

# From outside the VM: a TCP handshake with each ENI address (sshd listens on
# all of them), the namespace routing each vswitch to its libvirt bridge, with
# strict rp_filter: a reply through the management NIC would be dropped.
in_ns sysctl -q -w net.ipv4.conf.all.rp_filter=1
in_ns python3 - <<'EOF'
import socket, sys, time
enis = [("10.0.1.10", 22), ("10.0.1.11", 22), ("10.0.2.10", 22)]
bad = 0
for addr, port in enis:
    start = time.monotonic()
    try:
        with socket.create_connection((addr, port), timeout=5) as s:
            banner = s.recv(64).decode(errors="replace").strip()
        print(f"   ok    TCP {addr}:{port} from outside the VM ({banner}, "
              f"{(time.monotonic() - start) * 1000:.0f} ms)")
    except OSError as e:
        print(f"   FAIL  TCP {addr}:{port} from outside the VM: {e}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
pkg_log "vagrant/ci-up.sh: passed ($(elapsed); vagrant up ${up_took} s)"
