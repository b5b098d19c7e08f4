# shellcheck shell=bash
# The project's one shell library, sourced by packaging/build-*.sh,
# tests/packaging/*.sh, tests/py39/run.sh and (through tests/vm/lib.sh, the VM
# lab's part) the VM runners and vagrant/*.sh: logging, the host's tools,
# cached Debian roots of a given release, and running commands inside one.
#
# A root is made once by mmdebstrap and kept as a tarball in $PKG_CACHE
# (default /var/cache/eni-agent-pkg), keyed by its inputs; every use
# extracts a fresh copy, so nothing a build or a test does leaks into the next.

PKG_CACHE=${ENI_AGENT_PKG_CACHE:-/var/cache/eni-agent-pkg}
# Bump to force a rebuild of every cached root.
PKG_ROOT_STAMP=eni-pkg-root-1

pkg_log() { printf '== [%s] %s\n' "$(date +%T)" "$*" >&2; }
pkg_die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# pkg_need_tools CMD:PACKAGE ...: apt-get install the packages of missing commands.
pkg_need_tools() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] || pkg_apt_install "${missing[@]}"
}

# pkg_apt_install PACKAGE...: install on this machine, with `apt-get update` first if needed.
pkg_apt_install() {
    pkg_log "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null; }
}

# pkg_root_tarball RELEASE VARIANT PACKAGES [CACHE_DIR]: print the path of a
# cached tarball of a RELEASE root (mmdebstrap VARIANT, plus PACKAGES, comma
# separated, may be empty); build it if missing.
pkg_root_tarball() {
    local release=$1 variant=$2 packages=$3 cache=${4:-$PKG_CACHE} key tarball
    key=$(printf '%s\n' "$PKG_ROOT_STAMP" "$release" "$variant" "$packages" | sha256sum | cut -c1-12)
    tarball=$cache/$release-$variant-$key.tar
    if [ ! -s "$tarball" ]; then
        pkg_need_tools mmdebstrap:mmdebstrap
        pkg_log "building a $release root ($variant${packages:+, $packages}) in $tarball"
        mkdir -p "$cache"
        rm -f "$tarball.tmp"
        nice -n 10 mmdebstrap --quiet --format=tar --variant="$variant" ${packages:+--include="$packages"} \
            "$release" "$tarball.tmp" >&2
        mv "$tarball.tmp" "$tarball"
    fi
    echo "$tarball"
}

# pkg_extract TARBALL DIR: a fresh root in DIR (emptied first).
pkg_extract() {
    rm -rf "$2" && mkdir -p "$2"
    tar -C "$2" --numeric-owner -xpf "$1"
}

# pkg_chroot [--offline] ROOT CMD...: run CMD in ROOT with this machine's
# network (DNS and the CA bundle copied in, for pip and apt), a clean
# environment, and /proc, /sys, /dev and a fresh /run mounted in a private
# mount namespace (the mounts vanish with the command, and so do network
# namespaces made inside: `ip netns` works in there, against ROOT's /run/netns).
# --offline: no network at all (a fresh network namespace) and nothing copied
# in: a VM's root filesystem, which must install what it needs offline.
pkg_chroot() {
    local net=()
    if [ "$1" = --offline ]; then
        net=(--net); shift
    fi
    local root=$1; shift
    if [ ${#net[@]} -eq 0 ]; then
        cp -L /etc/resolv.conf "$root/etc/resolv.conf"
        if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
            mkdir -p "$root/etc/ssl/certs"
            cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca.crt"
        fi
    fi
    unshare --mount "${net[@]}" --propagation private -- sh -ec '
        root=$1; shift
        # The root a mount point of its own: `ip netns exec` remounts / as a slave.
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount -t sysfs sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=0755 tmpfs "$root/run"
        exec chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
            PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"' \
        pkg_chroot "$root" "$@"
}

# pkg_source_tree REPO DEST: the checkout's files (tracked + untracked, not
# ignored: no .venv, build/ or egg-info) copied into DEST.
pkg_source_tree() {
    local repo=$1 dest=$2
    mkdir -p "$dest"
    if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$repo" ls-files -z -co --exclude-standard \
            | tar -C "$repo" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$dest" -xf -
    else
        tar -C "$repo" --exclude=.git --exclude=.venv --exclude=build -cf - . | tar -C "$dest" -xf -
    fi
}

# pkg_version REPO: the project's version, from pyproject.toml.
pkg_version() {
    sed -n 's/^version = "\([^"]*\)".*/\1/p' "$1/pyproject.toml" | head -n1
}

# install_units SYSTEMD_DIR STAGE UNITDIR BINARY DOC: everything under the
# checkout's systemd/ into the package tree STAGE:
#   unit files (*.service, *.timer, …) and unit drop-in directories
#   (*.service.d/)  -> STAGE/UNITDIR, their `/usr/local/bin/eni-agent` (the
#                      path scripts/install.sh links) made BINARY, and their
#                      Documentation= the packaged README (DOC);
#   any other directory (networkd.conf.d/, …) -> STAGE/etc/systemd/<dir>/.
# Anything else is refused, so that a new file is never silently left out.
install_units() {
    local src=$1 stage=$2 unitdir=$3 binary=$4 doc=$5 path rel dest
    while IFS= read -r -d '' path; do
        rel=${path#"$src"/}
        case $rel in
            *.service|*.socket|*.timer|*.path|*.target|*.service.d/*.conf|*.socket.d/*.conf|*.timer.d/*.conf)
                dest=$stage$unitdir/$rel ;;
            */*) dest=$stage/etc/systemd/$rel ;;
            *) pkg_die "systemd/$rel: not a unit, nor in a directory: where does it go?" ;;
        esac
        install -D -m 0644 "$path" "$dest"
        case $dest in
            "$stage$unitdir"/*)
                sed -i -e "s|/usr/local/bin/eni-agent|$binary|g" \
                       -e "s|^Documentation=file:///opt/eni-agent/README.md|Documentation=file://$doc|" "$dest"
                ! grep -n '/usr/local\|/opt/eni-agent' "$dest" >&2 ||
                    pkg_die "systemd/$rel: a path the package does not have (above)" ;;
        esac
    done < <(find "$src" -type f -print0 | sort -z)
}
