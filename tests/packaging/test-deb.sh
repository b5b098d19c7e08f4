#!/usr/bin/env bash
# The .deb as an image builder uses it: build it for RELEASE, install it with
# `apt-get install ./eni-agent_*.deb` into a FRESH minimal root of RELEASE
# (mmdebstrap --variant=minbase, cached tarball; only Debian's mirror is
# reachable that way, nothing else is needed), use it, remove it, purge it.
#
# Usage (root): bash tests/packaging/test-deb.sh RELEASE [DEB]
#   RELEASE trixie | bookworm | bullseye; DEB: a package already built (else it builds one)
#
# Proves: the dependencies come from Debian; `eni-agent` on PATH runs;
# `man eni-agent` and `man 5 eni-agent.toml` work (man-db installed for it),
# bash and zsh completions are where the distribution looks;
# `validate` and `sync --dry-run` against the example metadata, and a real
# `sync` in a network namespace inside the root; the daemon enabled, the
# conffiles in place (cloud-init's AliYun datasource told to leave the ENIs);
# systemd-networkd restarted when its drop-in is added, not on a reinstall that
# leaves it as it was (a stand-in systemctl records the calls); an upgrade
# (reinstall) leaves the agent's state alone;
# `apt-get remove` (in that namespace) runs `eni-agent
# cleanup` (the agent's rules are gone) and keeps the conffiles; `apt-get
# purge` leaves no path behind that was not in the fresh root (apart from the
# dependencies' own files and apt/dpkg bookkeeping).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/packaging/lib.sh"
[ "$(id -u)" = 0 ] || { echo "tests/packaging/test-deb.sh: run as root" >&2; exit 2; }
release=${1:?usage: test-deb.sh RELEASE [DEB]}
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/eni-agent-test-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL ($release): $*" >&2; exit 1; }

if [ -n "${2:-}" ]; then
    deb=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
else
    t0=$(date +%s)
    mkdir "$work/out"
    bash "$repo/packaging/build-deb.sh" "$work/out" "$release" >/dev/null
    debs=("$work/out"/*)
    [ ${#debs[@]} -eq 1 ] || fail "build-deb.sh wrote ${#debs[@]} files: ${debs[*]}"
    deb=${debs[0]}
    case ${deb##*/} in eni-agent_*_*.deb) ;; *) fail "unexpected file name ${deb##*/}" ;; esac
    pkg_log "built ${deb##*/} in $(( $(date +%s) - t0 )) s"
fi
pkg_log "package: ${deb##*/}, $(du -k "$deb" | cut -f1) KiB"

tarball=$(pkg_root_tarball "$release" minbase "")
root=$work/root
pkg_extract "$tarball" "$root"
cp "$deb" "$root/tmp/"
install -m 0644 "$repo/examples/metadata.json" "$root/tmp/metadata.json"
snapshot() {  # every path in the root, but the mount points' contents
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \) \
        -prune -o -print | sort)
}
pkg_chroot "$root" true   # copies resolv.conf and the CA bundle in first: not the package's
snapshot > "$work/before"

# The guest's NICs in a namespace: the primary and the example's ENI (veth,
# peers left in the namespace), each up; then the package's life cycle.
pkg_chroot "$root" bash -euo pipefail -c '
    deb=/tmp/$1
    say() { printf "  -- %s\n" "$*"; }
    t0=$(date +%s)
    # "systemd is running" to the maintainer scripts; systemctl records its calls.
    mkdir -p /run/systemd/system
    ! command -v systemctl >/dev/null || { echo "the fresh root has a systemctl"; exit 1; }
    printf "#!/bin/sh\necho \"\$*\" >> /tmp/systemctl.log\n" > /usr/bin/systemctl
    chmod 0755 /usr/bin/systemctl  # (dpkg runs maintainer scripts without /usr/local on PATH)
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$deb" >/tmp/apt-install.log 2>&1 ||
        { cat /tmp/apt-install.log; exit 1; }
    say "apt-get install: $(( $(date +%s) - t0 )) s (with apt-get update)"
    command -v eni-agent
    eni-agent --version
    eni-agent validate --metadata /tmp/metadata.json
    # enabled: the link made, or (trixie'"'"'s deb-systemd-helper, systemd "running") systemctl asked to
    test -L /etc/systemd/system/multi-user.target.wants/eni-agent.service ||
        grep -qE "(preset|enable) eni-agent.service$" /tmp/systemctl.log || { echo "daemon not enabled"; exit 1; }
    test -L /etc/systemd/system/sysinit.target.wants/eni-agent-guard.service ||
        grep -qE "(preset|enable) eni-agent-guard.service$" /tmp/systemctl.log || { echo "boot guard not enabled"; exit 1; }
    # The boot guard writes the files that keep the network managers off the ENIs
    # the last run remembered (here the MAC list of the dhclient hook the package ships).
    mkdir -p /var/lib/eni-agent && printf "00:16:3E:00:01:01\nnot a mac\n" > /var/lib/eni-agent/kept-off-macs
    eni-agent guard
    [ "$(cat /run/eni-agent/dhclient-macs)" = "00:16:3e:00:01:01" ] || { echo "eni-agent guard wrote no MAC list"; exit 1; }
    for f in $(cat /var/lib/dpkg/info/eni-agent.conffiles); do test -f "$f"; done
    grep -q "^ExecStart=/usr/sbin/eni-agent daemon" /lib/systemd/system/eni-agent.service
    # Packaged like a system command: its man pages and shell completions.
    apt-get install -y -qq --no-install-recommends man-db >/tmp/apt-man.log 2>&1 ||
        { cat /tmp/apt-man.log; exit 1; }
    man -P cat eni-agent 2>/dev/null > /tmp/man8
    grep -q "EXIT STATUS" /tmp/man8 && grep -q "eni-agent cleanup" /tmp/man8 ||
        { echo "man eni-agent: no such page"; exit 1; }
    man -P cat 5 eni-agent.toml 2>/dev/null | grep -q "metadata_interval" ||
        { echo "man 5 eni-agent.toml: no such page"; exit 1; }
    grep -q "_ENI_AGENT_COMPLETE=bash_complete" /usr/share/bash-completion/completions/eni-agent
    grep -q "^#compdef eni-agent" /usr/share/zsh/vendor-completions/_eni-agent
    [ "$(COMP_WORDS="eni-agent cle" COMP_CWORD=1 _ENI_AGENT_COMPLETE=bash_complete eni-agent)" = "plain,cleanup" ] ||
        { echo "bash completion does not complete commands"; exit 1; }
    rm -rf /var/cache/man/cat*   # pages man may have formatted (made by this test, not the package)
    say "man eni-agent, man 5 eni-agent.toml, bash and zsh completion: ok"
    grep -qx "    apply_full_imds_network_config: false" /etc/cloud/cloud.cfg.d/90-eni-agent.cfg
    grep -qx "try-restart systemd-networkd.service" /tmp/systemctl.log ||
        { echo "first install: systemd-networkd not restarted for its new drop-in"; cat /tmp/systemctl.log; exit 1; }
    : > /tmp/systemctl.log
    ! grep -q "^metadata" /etc/eni-agent/config.toml   # the packaged default: the metadata service

    ip netns add guest
    ip -n guest link add eth0 address 00:16:3e:00:00:01 type veth peer name peer0
    ip -n guest link add eth1 address 00:16:3e:00:01:01 type veth peer name peer1
    for l in eth0 peer0 eth1 peer1 lo; do ip -n guest link set "$l" up; done
    ip -n guest addr add 10.0.0.5/24 dev eth0
    ip -n guest route add default via 10.0.0.253 dev eth0 onlink
    ip netns exec guest eni-agent sync --dry-run --metadata /tmp/metadata.json
    rules() { ip -n guest rule show; }   # (not piped into grep -q: pipefail and SIGPIPE)
    case $(rules) in *10.0.1.10*) echo "dry run changed the rules"; exit 1 ;; esac
    ip netns exec guest eni-agent sync --metadata /tmp/metadata.json
    case $(rules) in *"from 10.0.1.10 lookup"*) ;; *) echo "sync made no rule"; exit 1 ;; esac
    # An upgrade (here: the same version again) keeps the network as it is.
    ip netns exec guest dpkg -i "$deb" >/tmp/dpkg-reinstall.log 2>&1 || { cat /tmp/dpkg-reinstall.log; exit 1; }
    case $(rules) in *"from 10.0.1.10 lookup"*) ;; *) echo "an upgrade removed the agent rules"; exit 1 ;; esac
    say "upgrade (reinstall): the network stayed configured"
    ! grep -q "systemd-networkd" /tmp/systemctl.log ||
        { echo "reinstall restarted systemd-networkd (its drop-in did not change)"; exit 1; }
    grep -q "try-restart eni-agent.service" /tmp/systemctl.log ||
        { echo "upgrade did not restart the daemon"; cat /tmp/systemctl.log; exit 1; }
    say "upgrade: eni-agent restarted, systemd-networkd left alone (drop-in unchanged)"
    dpkg -L eni-agent > /tmp/dpkg-L

    ip netns exec guest apt-get remove -y -qq eni-agent >/tmp/apt-remove.log 2>&1 ||
        { cat /tmp/apt-remove.log; exit 1; }
    say "apt-get remove: ok"
    case $(rules) in *10.0.1.10*) echo "remove left the agent rules (no cleanup)"; exit 1 ;; esac
    case $(ip -n guest -o addr show dev eth1) in *10.0.1.10*) echo "remove left the agent address"; exit 1 ;; esac
    test -f /etc/eni-agent/config.toml || { echo "remove took the conffile"; exit 1; }
    test ! -e /usr/lib/eni-agent || { echo "remove left /usr/lib/eni-agent"; exit 1; }
    apt-get purge -y -qq eni-agent >/tmp/apt-purge.log 2>&1 || { cat /tmp/apt-purge.log; exit 1; }
    test ! -e /etc/cloud/cloud.cfg.d/90-eni-agent.cfg || { echo "purge left the cloud.cfg.d drop-in"; exit 1; }
    rm /usr/bin/systemctl
    say "apt-get purge: ok"
    ip netns delete guest' test-deb "${deb##*/}" || fail "see above"

# Nothing of the package left: every path it listed (but directories other
# packages share), and nothing new beside the dependencies' own files.
cp "$root/tmp/dpkg-L" "$work/dpkg-L"
left=$(while read -r p; do
           [ "$p" != /. ] || continue
           [ -e "$root$p" ] || [ -L "$root$p" ] || continue
           grep -qxF ".$p" "$work/before" && continue   # was there before (/etc, /lib, …)
           [ -d "$root$p" ] && [ ! -L "$root$p" ] && chroot "$root" dpkg-query -S "$p" >/dev/null 2>&1 && continue
           echo "$p"
       done < "$work/dpkg-L")
[ -z "$left" ] || fail "purge left paths of the package: $left"
snapshot > "$work/after"
# (merged /usr: a package listing /sbin/ip has put it at /usr/sbin/ip)
chroot "$root" sh -c 'cat /var/lib/dpkg/info/*.list' \
    | sed -E 's#^/(bin|sbin|lib|lib32|lib64|libx32)(/.*)$#/usr/\1\2\n&#' | sed 's|^|.|' | sort -u > "$work/owned"
new=$(comm -13 "$work/before" "$work/after" | comm -23 - "$work/owned" \
      | grep -vE '^\./(var/lib/(dpkg|apt|python|systemd/deb-systemd-helper-(enabled|masked))|var/cache|var/log)(/|$)' \
      | grep -vE '/__pycache__(/|$)|^\./usr/(local/)?lib/python3' \
      | grep -vE '^\./etc/(ld\.so\.cache|hosts|networks|inputrc|python3(\.[0-9]+)?|python3(\.[0-9]+)?/.*|rc[0-6S]\.d/.*)$' \
      | grep -vE '^\./(var/lib/man-db|etc/apparmor\.d/local|etc/systemd/system/timers\.target\.wants/man-db\.timer|etc/alternatives/write(\.1\.gz)?|usr/bin/write|usr/share/man/man1/write\.1\.gz)(/|$)' \
      || true)
# (those: what the dependencies' maintainer scripts make: python3's, readline's, procps';
# on trixie netbase's /etc/hosts and /etc/networks; and man-db's (on bullseye the
# `write` alternative of bsdmainutils, which it pulls in), which this test
# installs to read the man pages)
[ -z "$new" ] || fail "purge left new paths behind: $new"
named=$(find "$root" -xdev \( -name '*eni-agent*' -o -name '*eni_agent*' \) ! -path "$root/tmp/*" 2>/dev/null || true)
[ -z "$named" ] || fail "purge left paths named after the package: $named"
pkg_log "PASS $release: $(wc -l < "$work/dpkg-L") package paths, none left; $(( $(date +%s) - start )) s"
