#!/usr/bin/env bash
# The unit and integration suites under Debian 11's Python 3.9, in a bullseye
# root (chroot), as .ci/run runs them.
#
# Usage (root): bash tests/py39/run.sh [PYTEST ARGS...]
#   default arguments: tests/unit tests/integration; ENI_AGENT_PY39_TESTS=0 skips
#
# Cached in ${ENI_AGENT_PY39_CACHE:-/var/cache/eni-agent-bullseye}: the root
# (mmdebstrap --variant=minbase, as a tarball) and a venv of the test
# dependencies (keyed by pyproject.toml). Each run extracts a fresh root, puts
# the venv and this checkout in, installs the package (offline, --no-deps) and
# runs pytest in the chroot. The network namespaces the integration tests
# make live in the chroot's own /run/netns, inside a private mount namespace:
# `ip netns exec` works as on the machine, and nothing is left behind.
# Needs the network only to build the caches (Debian's mirror, PyPI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/packaging/lib.sh"
[ "${ENI_AGENT_PY39_TESTS:-1}" != 0 ] || { echo "== Python 3.9 suite skipped (ENI_AGENT_PY39_TESTS=0)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "tests/py39/run.sh: run as root" >&2; exit 2; }
# The unit files are checked with systemd-analyze by the machine's own run;
# bullseye's root has none. The journal-fields test bind-mounts a journal
# directory over /run/log/journal, which mount refuses inside the chroot
# (exit 32): the machine's own run has it. Every other test must run here.
[ $# -gt 0 ] || set -- -n 4 tests/unit tests/integration --ignore=tests/integration/test_systemd_units.py \
    --deselect tests/integration/test_daemon_operating.py::test_log_lines_about_an_eni_carry_journal_fields
cache=${ENI_AGENT_PY39_CACHE:-/var/cache/eni-agent-bullseye}
# procps: the tests read processes; nftables: the IPv6 reverse-path check;
# keepalived: the HaVip test; man-db: the man pages formatted without a warning.
packages=python3-venv,iproute2,procps,nftables,keepalived,man-db
venv=/opt/eni-agent-test
start=$(date +%s)
pkg_need_tools unshare:util-linux

tarball=$(pkg_root_tarball bullseye minbase "$packages" "$cache")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/eni-agent-py39.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
pkg_extract "$tarball" "$root"
pkg_source_tree "$repo" "$root/src"

# The venv of the dependencies (the package itself goes in per run).
key=$( { basename "$tarball"; cat "$repo/pyproject.toml"; } | sha256sum | cut -c1-12)
venv_tar=$cache/venv-$key.tar
if [ ! -s "$venv_tar" ]; then
    pkg_log "building the test venv (Python 3.9, $venv) in $venv_tar"
    pkg_chroot "$root" sh -ec '
        venv=$1
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip "setuptools>=68" wheel
        "$venv/bin/python" -m pip install -q "/src[test]"
        "$venv/bin/python" -m pip uninstall -q -y eni-agent' py39 "$venv" >&2
    tar -C "$root" -cf "$venv_tar.tmp" "${venv#/}"
    mv "$venv_tar.tmp" "$venv_tar"
    rm -rf "$root/src" && pkg_source_tree "$repo" "$root/src"
else
    tar -C "$root" -xf "$venv_tar"
fi

pkg_log "pytest under $(pkg_chroot "$root" "$venv/bin/python" --version) in a bullseye root: $*"
# ENI_AGENT_JUNIT=PATH: pytest's JUnit report copied there (.ci/tier.py counts it).
junit=()
[ -z "${ENI_AGENT_JUNIT:-}" ] || junit=(--junitxml=/tmp/eni-agent-junit.xml)
rc=0
pkg_chroot "$root" sh -ec '
    venv=$1; shift
    cd /src
    export ENI_AGENT_REQUIRE_INTEGRATION=1  # a skipped integration test fails (tests/conftest.py)
    "$venv/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation -e .
    exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"' py39 "$venv" "${junit[@]}" "$@" \
    || rc=$?
if [ -n "${ENI_AGENT_JUNIT:-}" ] && ! cp "$root/tmp/eni-agent-junit.xml" "$ENI_AGENT_JUNIT"; then
    [ "$rc" -ne 0 ] || rc=1  # no report: the tier cannot show what ran
fi
pkg_log "Python 3.9 suite: exit $rc, $(( $(date +%s) - start )) s"
exit $rc
