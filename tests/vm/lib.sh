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
BASE_SUITE=bookworm
BASE_PACKAGES=systemd,systemd-sysv,udev,iproute2,python3,python3-venv,linux-image-cloud-amd64,initramfs-tools

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

# vm_host_pip: a pip (in a venv in the cache) that builds wheels offline
# (setuptools and wheel preinstalled, for --no-build-isolation).
vm_host_pip() {
    local venv=$VM_CACHE/hostvenv
    if [ ! -x "$venv/bin/pip" ]; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check 'setuptools>=68' wheel >&2
    fi
    echo "$venv/bin/pip"
}

# vm_agent_wheel REPO DEST: build eni-agent's wheel into DEST from a copy of
# the checkout's files (tracked + untracked, not ignored: no stale build/ or
# egg-info, nothing written into the checkout); print the wheel's path.
vm_agent_wheel() {
    local repo=$1 dest=$2 src pip
    src=$(mktemp -d)
    if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$repo" ls-files -z -co --exclude-standard \
            | tar -C "$repo" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$src" -xf -
    else
        tar -C "$repo" --exclude=.git --exclude=.venv --exclude=build -cf - . | tar -C "$src" -xf -
    fi
    pip=$(vm_host_pip)
    mkdir -p "$dest"
    vm_log "building the eni-agent wheel from $repo"
    "$pip" --disable-pip-version-check wheel -q --no-deps --no-build-isolation -w "$dest" "$src" >&2
    rm -rf "$src"
    ls "$dest"/eni_agent-*.whl
}

# vm_guest_wheels DEST SPEC...: wheels of SPEC and their dependencies for the
# guest's Python (bookworm: CPython 3.11, glibc 2.36) into DEST; from
# $VM_CACHE/wheelhouse when it has them all (offline), else from the index
# (and then kept in the wheelhouse for next time).
vm_guest_wheels() {
    local dest=$1 pip; shift
    pip=$(vm_host_pip)
    local target=(--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311
                  --abi abi3 --abi none --platform manylinux_2_17_x86_64
                  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any)
    mkdir -p "$dest" "$VM_CACHE/wheelhouse"
    if "$pip" --disable-pip-version-check download -q "${target[@]}" --no-index \
            --find-links "$VM_CACHE/wheelhouse" -d "$dest" "$@" >/dev/null 2>&1; then
        vm_log "guest wheels: from the cache"
    else
        vm_log "guest wheels: downloading (pip download) for cp311 manylinux"
        "$pip" --disable-pip-version-check download -q "${target[@]}" -d "$dest" "$@" >&2
        find "$dest" -name '*.whl' ! -name 'eni_agent-*' -exec cp -n {} "$VM_CACHE/wheelhouse/" \;
    fi
}
