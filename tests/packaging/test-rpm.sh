#!/usr/bin/env bash
# The .rpm, as far as this machine can take it (no RHEL-like system is
# reachable here): build it, check its contents and metadata with
# `rpm -qp`, then `rpm -i --nodeps --root` it into a scratch root whose
# python3 is CPython 3.9 like EL9's (a Debian 11 root: glibc 2.31, newer than
# the wheels' manylinux floor), run it there (`--version`, `validate`, `sync
# --dry-run` and `sync` in a network namespace), and `rpm -e` it (in that
# namespace: the erase runs `eni-agent cleanup`) leaving nothing behind.
# Not proven here: dnf resolving the Requires on a real EL9, SELinux labels,
# systemd's handling of the scriptlets on a booted EL9.
#
# Usage (root): bash tests/packaging/test-rpm.sh [RPM]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/packaging/lib.sh"
[ "$(id -u)" = 0 ] || { echo "tests/packaging/test-rpm.sh: run as root" >&2; exit 2; }
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/eni-agent-test-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL (rpm): $*" >&2; exit 1; }
pkg_need_tools rpm:rpm cpio:cpio

if [ -n "${1:-}" ]; then
    rpm=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
    mkdir "$work/out"
    bash "$repo/packaging/build-rpm.sh" "$work/out" >/dev/null
    rpms=("$work/out"/*)
    [ ${#rpms[@]} -eq 1 ] || fail "build-rpm.sh wrote ${#rpms[@]} files: ${rpms[*]}"
    rpm=${rpms[0]}
fi
case ${rpm##*/} in eni-agent-*-*.x86_64.rpm) ;; *) fail "unexpected file name ${rpm##*/}" ;; esac
pkg_log "package: ${rpm##*/}, $(du -k "$rpm" | cut -f1) KiB"

# 1. Contents and metadata.
files=$(rpm -qlp "$rpm")
for f in /usr/sbin/eni-agent /usr/lib/systemd/system/eni-agent.service \
         /usr/lib/systemd/system/eni-agent-sync.service /usr/lib/systemd/system/eni-agent-guard.service \
         /etc/eni-agent/config.toml \
         /etc/iproute2/rt_protos.d/eni-agent.conf /etc/systemd/networkd.conf.d/eni-agent.conf \
         /usr/lib/eni-agent/site/eni_agent/main.py /usr/share/man/man8/eni-agent.8.gz \
         /usr/share/man/man5/eni-agent.toml.5.gz /usr/share/bash-completion/completions/eni-agent \
         /usr/share/zsh/site-functions/_eni-agent /etc/cloud/cloud.cfg.d/90-eni-agent.cfg; do
    grep -qxF "$f" <<<"$files" || fail "missing $f"
done
for d in pydantic pydantic_core pyroute2 click tomli; do
    grep -q "^/usr/lib/eni-agent/site/$d/__init__.py$" <<<"$files" || fail "the private tree lacks $d"
done
grep -q '/pydantic_core/_pydantic_core\.cpython-39-x86_64-linux-gnu\.so$' <<<"$files" ||
    fail "pydantic-core is not built for CPython 3.9"
grep -q '/eni_agent/__pycache__/main\.cpython-39\.pyc$' <<<"$files" || fail "no bytecode for 3.9"
outside=$(grep -vE '^/(usr/lib/eni-agent|usr/lib/systemd/system|usr/sbin/eni-agent$|usr/share/doc/eni-agent|usr/share/man/man[58]/eni-agent(\.toml)?\.[58]\.gz$|usr/share/bash-completion(/completions(/eni-agent)?)?$|usr/share/zsh(/site-functions(/_eni-agent)?)?$|etc/(eni-agent|iproute2/rt_protos\.d|systemd/[^/]+)|etc/cloud(/cloud\.cfg\.d(/90-eni-agent\.cfg)?)?$)(/|$)' <<<"$files" || true)
[ -z "$outside" ] || fail "files outside the package's places: $outside"
etc_files=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" | awk '/^-/ && $2 ~ /^\/etc\// {print $2}' | sort)
[ "$(rpm -qcp "$rpm" | sort)" = "$etc_files" ] || fail "not every file under /etc is a config file"
requires=$(rpm -qp --requires "$rpm")
grep -qx 'python3 >= 3.9' <<<"$requires" || fail "no 'Requires: python3 >= 3.9': $requires"
grep -qx 'iproute' <<<"$requires" || fail "no 'Requires: iproute'"
rpm -qp --qf '%{ARCH}\n' "$rpm" | grep -qx x86_64 || fail "not x86_64"
mkdir "$work/x"
rpm2cpio "$rpm" | (cd "$work/x" && cpio -idm --quiet)
grep -q '^ExecStart=/usr/sbin/eni-agent daemon' "$work/x/usr/lib/systemd/system/eni-agent.service" ||
    fail "the unit does not run /usr/sbin/eni-agent"
head -n1 "$work/x/usr/sbin/eni-agent" | grep -qx '#!/usr/bin/python3.9 -I' || fail "unexpected launcher"
pkg_log "contents: $(grep -c . <<<"$files") paths, config files and requires as expected"

# 2. Installed into a scratch root with CPython 3.9, used, erased.
tarball=$(pkg_root_tarball bullseye minbase python3,iproute2)
root=$work/root
pkg_extract "$tarball" "$root"
cp "$rpm" "$root/tmp/"
install -m 0644 "$repo/examples/metadata.json" "$root/tmp/metadata.json"
pkg_chroot "$root" true
before=$(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \) -prune -o -print | sort)
rpmdb=(--dbpath /var/lib/rpm)
# rpm's status kept; only its warnings about --root on a foreign system hidden.
rpm_quietly() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    grep -v 'should not be used\|However assuming' <<<"$out" || true
    return "$rc"
}
rpm_quietly rpm -i --nodeps "${rpmdb[@]}" --root "$root" "$root/tmp/${rpm##*/}" ||
    fail "rpm -i exited $?"
rpm -q "${rpmdb[@]}" --root "$root" eni-agent >/dev/null || fail "rpm -i did not install it"
pkg_chroot "$root" bash -euo pipefail -c '
    eni-agent --version
    eni-agent validate --metadata /tmp/metadata.json
    ip netns add guest
    ip -n guest link add eth0 address 00:16:3e:00:00:01 type veth peer name peer0
    ip -n guest link add eth1 address 00:16:3e:00:01:01 type veth peer name peer1
    for l in eth0 peer0 eth1 peer1 lo; do ip -n guest link set "$l" up; done
    ip -n guest addr add 10.0.0.5/24 dev eth0
    ip -n guest route add default via 10.0.0.253 dev eth0 onlink
    ip netns exec guest eni-agent sync --dry-run --metadata /tmp/metadata.json
    ip netns exec guest eni-agent sync --metadata /tmp/metadata.json
    case $(ip -n guest rule show) in *"from 10.0.1.10 lookup"*) ;; *) echo "sync made no rule"; exit 1 ;; esac' ||
    fail "the installed package does not work (above)"
# Erase in a network namespace of its own: the scriptlet's cleanup must not
# touch this machine's network.
rpm_quietly unshare --net -- rpm -e "${rpmdb[@]}" --root "$root" eni-agent ||
    fail "rpm -e exited $?"
! rpm -q "${rpmdb[@]}" --root "$root" eni-agent >/dev/null 2>&1 || fail "rpm -e did not erase it"
after=$(cd "$root" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \) -prune -o -print | sort)
# (rpm's database aside; and /usr/lib/systemd/system, which the scratch root
# lacks and EL9's systemd package owns)
new=$(comm -13 <(echo "$before") <(echo "$after") \
      | grep -vE '^\./(var/lib/rpm|var/log|var/cache)(/|$)|^\./usr/lib/systemd(/system)?$' || true)
[ -z "$new" ] || fail "rpm -e left paths behind: $new"
pkg_log "PASS rpm: installed, ran on CPython 3.9, erased without a trace; $(( $(date +%s) - start )) s"
