#!/usr/bin/env bash
# `vagrant validate` of vagrant/Vagrantfile for both providers, libvirt and
# VirtualBox, on a machine that has neither a VM nor VirtualBox: installs
# vagrant and vagrant-libvirt (Debian packages) if missing, and puts a stub
# VBoxManage on PATH, because Vagrant's VirtualBox provider refuses to load
# (and so to validate) without one. Nothing is booted; nothing is written
# into the repository (Vagrant's state goes to a temporary directory).
#
# Usage: bash vagrant/ci-validate.sh
# Exit 0: valid for both; 1: invalid; 3: vagrant missing and cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v vagrant >/dev/null || ! vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt; then
    [ "$(id -u)" = 0 ] || { echo "ci-validate: vagrant/vagrant-libvirt missing; run as root to install" >&2; exit 3; }
    echo "== installing vagrant vagrant-libvirt"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends vagrant vagrant-libvirt >/dev/null 2>&1; then
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends vagrant vagrant-libvirt >/dev/null; } \
            || { echo "ci-validate: cannot install vagrant" >&2; exit 3; }
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
# Only what the provider asks at load time: its version (7.0 is supported by Vagrant 2.3).
cat > "$tmp/bin/VBoxManage" <<'EOF'
#!/bin/sh
case "$1" in
    --version|-v) echo "7.0.20r163906" ;;
    *) echo "VBoxManage stub (vagrant/ci-validate.sh): only --version is answered" >&2; exit 1 ;;
esac
EOF
chmod +x "$tmp/bin/VBoxManage"

export VAGRANT_CWD=$here VAGRANT_DOTFILE_PATH=$tmp/dot VAGRANT_CHECKPOINT_DISABLE=1
echo "== $(vagrant --version), $(vagrant plugin list | grep vagrant-libvirt)"
rc=0
for provider in libvirt virtualbox; do
    for driver in kvm qemu; do
        [ "$provider" = libvirt ] || [ "$driver" = kvm ] || continue
        label=$provider
        [ "$provider" = virtualbox ] || label="$provider (driver $driver)"
        if out=$(PATH=$tmp/bin:$PATH VAGRANT_DEFAULT_PROVIDER=$provider \
                 ENI_AGENT_LIBVIRT_DRIVER=$driver vagrant validate 2>&1); then
            echo "== vagrant validate, $label: ok ($(echo "$out" | tail -n1))"
        else
            echo "== vagrant validate, $label: FAILED"
            echo "$out"
            rc=1
        fi
    done
done
exit $rc
