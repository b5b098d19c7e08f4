#!/usr/bin/env bash
# The packages, as CI proves them: the .deb for trixie, bookworm and bullseye
# (built, installed into a fresh minimal root, used, removed, purged), then
# the .rpm (built, checked, installed into a scratch root, used, erased).
# Usage (root): bash tests/packaging/run.sh      ENI_AGENT_PACKAGING_TESTS=0 skips.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "${ENI_AGENT_PACKAGING_TESTS:-1}" != 0 ] || { echo "== packaging tests skipped"; exit 0; }
start=$(date +%s)
bash "$here/test-deb.sh" trixie
bash "$here/test-deb.sh" bookworm
bash "$here/test-deb.sh" bullseye
bash "$here/test-rpm.sh"
echo "== packaging tests passed in $(( $(date +%s) - start )) s"
