# Sourced by tests/vm/*.sh and vagrant/ci-*.sh: the cache, the host tools,
# and the cached Debian 12 base rootfs that both the VM test and the local
# Vagrant box start from.
#
# Big artefacts live OUTSIDE the repository, in $ENI_AGENT_VM_CACHE
# (default /var/cache/eni-agent-vm). The base rootfs is rebuilt only when its
# inputs change: the package list, the suite, or BASE_STAMP below.

VM_CACHE=${ENI_AGENT_VM_CACHE:-/var/cache/eni-agent-vm}
# Bump to force a rebuild of every cached base rootfs.
BASE_STAMP=eni-vm-base-1
# ENI_AGENT_VM_SUITE=trixie: the same images on Debian 13 (the .deb built for it too).
BASE_SUITE=${ENI_AGENT_VM_SUITE:-bookworm}
# What eni-agent's .deb depends on is in (python3, iproute2, procps): it installs offline.
BASE_PACKAGES=systemd,systemd-sysv,udev,iproute2,procps,python3,python3-venv,linux-image-cloud-amd64,initramfs-tools

vm_log() { printf '== [%s] %s\n' "$(date +%T)" "$*" >&2; }

# vm_need_tools CMD:PACKAGE ...: apt-get install the packages of missing commands.
vm_need_tools() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] || vm_apt_install "${missing[@]}"
}

# vm_apt_install PACKAGE...: install, with `apt-get update` first if needed.
vm_apt_install() {
    vm_log "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

# vm_base_rootfs [EXTRA_PACKAGES]: print the path of a cached base rootfs
# (a directory) with BASE_PACKAGES plus EXTRA_PACKAGES; build it if missing.
vm_base_rootfs() {
    local packages=$BASE_PACKAGES${1:+,$1} key dir
    key=$(printf '%s\n' "$BASE_STAMP" "$BASE_SUITE" "$packages" | sha256sum | cut -c1-12)
    dir=$VM_CACHE/base-$key
    # Runs side by side (the VM tier runs two at a time) build each base once.
    mkdir -p "$VM_CACHE"
    local lock
    exec {lock}>"$VM_CACHE/base.lock"
    flock "$lock"
    if [ ! -e "$dir/ok" ]; then
        vm_log "building the $BASE_SUITE base rootfs ($packages) in $dir"
        mkdir -p "$VM_CACHE"
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$dir.tmp"
        # --variant=apt: Essential + apt, then only what is listed.
        nice -n 10 mmdebstrap --quiet --variant=apt --include="$packages" \
            "$BASE_SUITE" "$dir.tmp/rootfs" >&2
        printf '%s\n' "$BASE_STAMP" "$BASE_SUITE" "$packages" > "$dir.tmp/inputs"
        touch "$dir.tmp/ok"
        mv "$dir.tmp" "$dir"
    fi
    exec {lock}>&-
    echo "$dir/rootfs"
}

# vm_chroot ROOT CMD...: run CMD in ROOT, with no network (a fresh network
# namespace), and /proc, /sys and /dev mounted in
# a private mount namespace (the mounts vanish with the command).
vm_chroot() {
    local root=$1; shift
    unshare --mount --net --propagation private -- sh -ec '
        root=$1; shift
        mount -t proc proc "$root/proc"
        mount -t sysfs sys "$root/sys"
        mount --rbind /dev "$root/dev"
        exec chroot "$root" "$@"' vm_chroot "$root" "$@"
}

# vm_agent_deb REPO DEST: eni-agent's Debian package for the guests' release
# (bookworm), built by packaging/build-deb.sh from the checkout's files
# (tracked + untracked, not ignored), into DEST; print its path. Cached in
# $VM_CACHE/deb-<hash of the package's inputs>: the VM tests and the Vagrant
# box share one build (which needs Debian's mirror and PyPI).
vm_agent_deb() {
    local repo=$1 dest=$2 src key cached
    src=$(mktemp -d)
    . "$repo/packaging/lib.sh"
    pkg_source_tree "$repo" "$src"
    # Keyed by what goes into the package only: a change to a test reuses it.
    key=$({ tar -C "$src" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - \
              eni_agent pyproject.toml README.md systemd packaging
            [ "$BASE_SUITE" = bookworm ] || echo "$BASE_SUITE"; } | sha256sum | cut -c1-12)
    cached=$VM_CACHE/deb-$key
    # VMs built side by side share one build.
    mkdir -p "$VM_CACHE"
    local lock
    exec {lock}>"$VM_CACHE/deb.lock"
    flock "$lock"
    if ! ls "$cached"/eni-agent_*.deb >/dev/null 2>&1; then
        vm_log "building eni-agent's .deb (packaging/build-deb.sh) into $cached"
        rm -rf "$cached" "$cached.tmp"
        bash "$src/packaging/build-deb.sh" "$cached.tmp" "$BASE_SUITE" >/dev/null
        mv "$cached.tmp" "$cached"
        # Packages of older checkouts (~4 MB each), unused for a week.
        find "$VM_CACHE" -maxdepth 1 -name 'deb-*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true
    else
        touch "$cached"
        vm_log "eni-agent's .deb: from the cache ($cached)"
    fi
    exec {lock}>&-
    rm -rf "$src"
    mkdir -p "$dest"
    cp "$cached"/eni-agent_*.deb "$dest/"
    ls "$dest"/eni-agent_*.deb
}
