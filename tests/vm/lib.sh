# shellcheck shell=bash
# The VM lab's part of the shell library (packaging/lib.sh, sourced here: pkg_log,
# pkg_need_tools, pkg_apt_install, pkg_chroot), sourced by tests/vm/*/run.sh,
# build-image.sh, the scenarios' customize.sh and vagrant/*.sh: the cache, the
# cached Debian 12 base rootfs that the VM scenarios and the local Vagrant box
# start from, eni-agent's .deb for the guests, and `vm_runner`, every run.sh's start.
#
# Big artefacts live OUTSIDE the repository, in $ENI_AGENT_VM_CACHE
# (default /var/cache/eni-agent-vm). The base rootfs is rebuilt only when its
# inputs change: the package list, the suite, or BASE_STAMP below.

. "$(dirname "${BASH_SOURCE[0]}")/../../packaging/lib.sh"

VM_CACHE=${ENI_AGENT_VM_CACHE:-/var/cache/eni-agent-vm}
# Bump to force a rebuild of every cached base rootfs.
BASE_STAMP=eni-vm-base-1
# ENI_AGENT_VM_SUITE=trixie: the same images on Debian 13 (the .deb built for it too).
BASE_SUITE=${ENI_AGENT_VM_SUITE:-bookworm}
# What eni-agent's .deb depends on is in (python3, iproute2, procps): it installs offline.
BASE_PACKAGES=systemd,systemd-sysv,udev,iproute2,procps,python3,python3-venv,linux-image-cloud-amd64,initramfs-tools

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
        pkg_log "building the $BASE_SUITE base rootfs ($packages) in $dir"
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

# vm_chroot ROOT CMD...: CMD in a guest's root filesystem, with no network.
vm_chroot() { pkg_chroot --offline "$@"; }

# vm_agent_deb REPO DEST: eni-agent's Debian package for the guests' release
# (bookworm), built by packaging/build-deb.sh from the checkout's files
# (tracked + untracked, not ignored), into DEST; print its path. Cached in
# $VM_CACHE/deb-<hash of the package's inputs>: the VM tests and the Vagrant
# box share one build (which needs Debian's mirror and PyPI).
vm_agent_deb() {
    local repo=$1 dest=$2 src key cached
    src=$(mktemp -d)
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
        pkg_log "building eni-agent's .deb (packaging/build-deb.sh) into $cached"
        rm -rf "$cached" "$cached.tmp"
        bash "$src/packaging/build-deb.sh" "$cached.tmp" "$BASE_SUITE" >/dev/null
        mv "$cached.tmp" "$cached"
        # Packages of older checkouts (~4 MB each), unused for a week.
        find "$VM_CACHE" -maxdepth 1 -name 'deb-*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true
    else
        touch "$cached"
        pkg_log "eni-agent's .deb: from the cache ($cached)"
    fi
    exec {lock}>&-
    rm -rf "$src"
    mkdir -p "$dest"
    cp "$cached"/eni-agent_*.deb "$dest/"
    ls "$dest"/eni-agent_*.deb
}

# vm_runner KEPT [CMD:PACKAGE...]: the start of a VM scenario's run.sh, as root:
# the host's tools (qemu, mmdebstrap, ... and these), the run directory
# $VM_CACHE/run-<scenario>-$$ as $work (its namespaces and taps are named after
# $tag, this shell's pid), after removing those of earlier runs whose shell is
# gone; on exit, whatever the run left (qemu, namespaces) is stopped, $work
# removed after a pass or kept after a failure (KEPT: what is in it), and the
# total time printed.
vm_runner() {
    VM_RUNNER_KEPT=$1; shift
    VM_RUNNER_START=$(date +%s)
    local scenario dir ns pid
    scenario=$(basename "$(cd "$(dirname "$0")" && pwd)")
    [ "$(id -u)" = 0 ] || { echo "tests/vm/$scenario/run.sh: run as root" >&2; exit 2; }
    pkg_need_tools qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs \
        ip:iproute2 unshare:util-linux git:git "$@"
    python3 -c 'import ensurepip, venv' 2>/dev/null || pkg_apt_install python3-venv

    # Namespaces and run directories of earlier runs whose shell is gone.
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^eni-vm-[0-9]+/ {print $1}'); do
        pid=${ns#eni-vm-}; pid=${pid%%[!0-9]*}
        kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" || true
    done
    for dir in "$VM_CACHE"/run-*-[0-9]*; do
        pid=${dir##*-}
        if [ -d "$dir" ] && ! kill -0 "$pid" 2>/dev/null; then rm -rf "$dir"; fi
    done

    tag=$$
    work=$VM_CACHE/run-$scenario-$tag
    mkdir -p "$work"
    trap vm_runner_exit EXIT
    trap 'exit 130' INT TERM
}

vm_runner_exit() {
    local rc=$? pidfile ns
    # The Python half cleans up after itself (its qemus die with it); this is
    # for a run killed on the way.
    while IFS= read -r -d '' pidfile; do
        [ -s "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    done < <(find "$work" -name qemu.pid -print0 2>/dev/null)
    for ns in $(ip netns list 2>/dev/null | awk -v t="eni-vm-$tag" 'index($1, t) == 1 && substr($1, length(t) + 1, 1) !~ /[0-9]/ {print $1}'); do
        ip netns delete "$ns" 2>/dev/null || true
    done
    if [ $rc -eq 0 ]; then
        rm -rf "$work"
    else
        rm -f "$work/vm.img"
        echo "== kept for inspection: $work ($VM_RUNNER_KEPT)" >&2
    fi
    pkg_log "total $(( $(date +%s) - VM_RUNNER_START )) s"
}
