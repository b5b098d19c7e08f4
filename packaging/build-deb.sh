#!/usr/bin/env bash
# Build eni-agent's Debian package for one release, from this checkout.
#
# Usage (root): bash packaging/build-deb.sh OUTDIR RELEASE
#   RELEASE: trixie (Debian 13, Python 3.13) | bookworm (12) | bullseye (11)
#   -> OUTDIR/eni-agent_<version>_<arch>.deb (and nothing else), where
#      <version> is pyproject's version plus -1~deb13 / -1~deb12 / -1~deb11.
#
# What Debian lacks at the needed versions (pydantic 2, pyroute2 0.9, click,
# tomli on bullseye) travels inside the package in a private venv,
# /usr/lib/eni-agent, on Debian's own /usr/bin/python3 of that release. The
# venv is built AT ITS FINAL PATH inside a fresh root of RELEASE (mmdebstrap,
# cached by packaging/lib.sh), from PyPI, so its scripts and its pyvenv.cfg
# name the paths they will have on the target: no relocation step, no path
# rewriting; postinst compiles its bytecode there. Needs the network (Debian's
# mirror, PyPI). `lintian` on the result: no errors (docs/operating.md lists
# the warnings and why they stay).
#
# Layout: /usr/sbin/eni-agent -> /usr/lib/eni-agent/bin/eni-agent; the man
# pages eni-agent(8) and eni-agent.toml(5) and bash and zsh completions, made
# from the click commands and the config model (eni_agent/manpage.py); every unit
# in systemd/ under /lib/systemd/system (/usr/lib/systemd/system on trixie,
# whose packages ship nothing under the /lib alias); systemd/<dir>/ (the networkd drop-in)
# under /etc/systemd/<dir>/; /etc/iproute2/rt_protos.d/eni-agent.conf and
# /etc/eni-agent/config.toml (packaging/config.toml: the ECS metadata service)
# as conffiles. Maintainer scripts: packaging/debian/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

[ $# -eq 2 ] || pkg_die "usage: build-deb.sh OUTDIR RELEASE (trixie|bookworm|bullseye)"
release=$2
unitdir=/lib/systemd/system
case $release in
    trixie) debver=13 unitdir=/usr/lib/systemd/system ;;
    bookworm) debver=12 ;;
    bullseye) debver=11 ;;
    *) pkg_die "unsupported release '$release' (trixie, bookworm or bullseye)" ;;
esac
[ "$(id -u)" = 0 ] || pkg_die "run as root (it builds in a chroot)"
mkdir -p "$1"
out=$(cd "$1" && pwd)
pkg_need_tools dpkg-deb:dpkg unshare:util-linux
start=$(date +%s)

upstream=$(pkg_version "$repo")
[ -n "$upstream" ] || pkg_die "no version in $repo/pyproject.toml"
version=$upstream-1~deb$debver
venv=/usr/lib/eni-agent

# The man pages' date: the last commit's (reproducible), else now.
source_date=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/eni-agent-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
stage=$work/stage

# 1. The private venv, built inside a fresh root of the release.
tarball=$(pkg_root_tarball "$release" minbase python3-venv)
pkg_extract "$tarball" "$root"
pkg_source_tree "$repo" "$root/src"
pkg_log "building $venv in a $release root"
pkg_chroot "$root" sh -ec '
    venv=$1
    export PYTHONDONTWRITEBYTECODE=1  # no bytecode in the package: postinst makes it
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q --no-compile /src
    "$venv/bin/python" -m pip uninstall -q -y pip setuptools wheel 2>/dev/null || true
    # The man pages and shell completions, rendered from the click commands
    # and the config model they document (-B: no bytecode of their own).
    mkdir -p /generated
    SOURCE_DATE_EPOCH=$2 "$venv/bin/python" -B -m eni_agent.manpage /generated >/dev/null
    _ENI_AGENT_COMPLETE=bash_source "$venv/bin/eni-agent" > /generated/eni-agent.bash
    _ENI_AGENT_COMPLETE=zsh_source "$venv/bin/eni-agent" > /generated/_eni-agent
    # Nothing in the venv installs packages later, and only eni-agent is
    # meant to run from it (pyroute2 brings commands of its own).
    for f in "$venv"/bin/*; do
        case ${f##*/} in python*|eni-agent|activate) ;; *) rm -f "$f" ;; esac
    done
    rm -rf "$venv/share"
    # No bytecode in the package (Debian policy; lintian): postinst compiles
    # it on the target, prerm removes it (debian/postinst, debian/prerm).
    find "$venv" -name __pycache__ -prune -exec rm -rf {} +
    "$venv/bin/eni-agent" --version
    python3 -c "import sys; print(\"%d.%d\" % sys.version_info[:2])" > /python-version
    dpkg --print-architecture > /arch' build "$venv" "$source_date" >&2
pyver=$(cat "$root/python-version")
arch=$(cat "$root/arch")
next_minor=${pyver%.*}.$(( ${pyver#*.} + 1 ))

# 2. The package tree.
pkg_log "assembling eni-agent $version ($arch, python3 $pyver)"
mkdir -p "$stage$venv" "$stage/usr/sbin" "$stage$unitdir" "$stage/DEBIAN" \
    "$stage/usr/share/doc/eni-agent" "$stage/etc/eni-agent" "$stage/etc/iproute2/rt_protos.d"
tar -C "$root$venv" -cf - . | tar -C "$stage$venv" -xf -
ln -s ../lib/eni-agent/bin/eni-agent "$stage/usr/sbin/eni-agent"
install_units "$repo/systemd" "$stage" "$unitdir" /usr/sbin/eni-agent \
    /usr/share/doc/eni-agent/README.md
install -m 0644 "$here/config.toml" "$stage/etc/eni-agent/config.toml"
# The dhclient hook that keeps a listed ENI's lease out of the main table: the
# agent writes the same file when it runs, but the first lease at boot can come
# before it does (coexist.py; docs/network-managers.md).
mkdir -p "$stage/etc/dhcp/dhclient-enter-hooks.d"
/usr/bin/python3 - "$repo" > "$stage/etc/dhcp/dhclient-enter-hooks.d/eni-agent" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from eni_agent.coexist import DHCLIENT_HOOK_NAME, DHCLIENT_MACS_NAME, PATHS, dhclient_hook_text
assert DHCLIENT_HOOK_NAME == "eni-agent"
sys.stdout.write(dhclient_hook_text(PATHS.run_dir / DHCLIENT_MACS_NAME))
PY
chmod 0644 "$stage/etc/dhcp/dhclient-enter-hooks.d/eni-agent"
echo "234 eni-agent" > "$stage/etc/iproute2/rt_protos.d/eni-agent.conf"
# Keeps cloud-init's AliYun datasource from rendering DHCP on the ENIs.
install -D -m 0644 "$here/cloud/90-eni-agent.cfg" "$stage/etc/cloud/cloud.cfg.d/90-eni-agent.cfg"
install -m 0644 "$repo/README.md" "$stage/usr/share/doc/eni-agent/README.md"
install -m 0644 "$here/debian/copyright" "$stage/usr/share/doc/eni-agent/copyright"
# Built from a checkout, not a Debian source package: one entry, this build's.
cat <<EOF | gzip -9n > "$stage/usr/share/doc/eni-agent/changelog.Debian.gz"
eni-agent ($version) unstable; urgency=medium

  * Built from the eni-agent repository (see README.md there).

 -- eni-agent developers <eni-agent@users.noreply.github.com>  $(date -R -u -d "@$source_date")
EOF
install -D -m 0644 "$root/generated/eni-agent.bash" "$stage/usr/share/bash-completion/completions/eni-agent"
install -D -m 0644 "$root/generated/_eni-agent" "$stage/usr/share/zsh/vendor-completions/_eni-agent"
for page in "$root"/generated/*.[0-9]; do
    section=${page##*.}
    mkdir -p "$stage/usr/share/man/man$section"
    gzip -9n < "$page" > "$stage/usr/share/man/man$section/${page##*/}.gz"
done

# Conffiles: everything under /etc.
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
for script in preinst postinst prerm postrm; do
    install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: eni-agent
Version: $version
Architecture: $arch
Maintainer: eni-agent developers <eni-agent@users.noreply.github.com>
Installed-Size: $size
Depends: python3 (>= $pyver~), python3 (<< $next_minor), iproute2, procps, init-system-helpers (>= 1.54~), libc6
Section: net
Priority: optional
Homepage: https://github.com/eni-agent/eni-agent
Description: configure secondary cloud NICs (ENIs) with per-NIC policy routing
 eni-agent reads the ECS instance metadata and gives every secondary ENI its
 addresses, its own route table and from-rules, so replies leave through the
 NIC the traffic arrived on. A daemon keeps it so across hotplug, detach and
 drift; a one-shot unit is there for images that want no daemon.
 .
 Its Python dependencies (pydantic 2, pyroute2, click) live in a private
 venv under /usr/lib/eni-agent, on Debian's python3.
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    > "$stage/DEBIAN/md5sums"

deb=$out/eni-agent_${version}_${arch}.deb
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
pkg_log "$deb: $(du -k "$deb" | cut -f1) KiB, installed $size KiB, built in $(( $(date +%s) - start )) s"
echo "$deb"
