#!/usr/bin/env bash
# Build eni-agent's RPM for EL9-like images (Rocky/Alma/RHEL 9: python3 3.9)
# from this checkout, with rpmbuild (Debian's `rpm` package) and
# packaging/eni-agent.spec.
#
# Usage: bash packaging/build-rpm.sh OUTDIR
#   -> OUTDIR/eni-agent-<version>-<release>.x86_64.rpm (and nothing else)
#
# What EL9 lacks (pydantic 2, pyroute2 0.9, click, tomli) travels in a private
# tree, /usr/lib/eni-agent/site, made by pip for CPython 3.9 on manylinux
# x86_64 (--target, binary wheels only: no compiler, any build machine), and
# byte-compiled for 3.9 at its final path. /usr/sbin/eni-agent runs
# /usr/bin/python3.9 -I (EL9's python3; isolated: no user site, no PYTHON*
# variables) with that tree first on sys.path. Needs the network (PyPI) unless pip finds every
# wheel locally.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || pkg_die "usage: build-rpm.sh OUTDIR"
mkdir -p "$1"
out=$(cd "$1" && pwd)
pkg_need_tools rpmbuild:rpm
# pip runs in a venv of Debian's own python3 (the tree it makes is for 3.9
# whatever runs pip: --python-version, --platform, binary wheels only).
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || pkg_need_tools python3-venv-missing:python3-venv
start=$(date +%s)
version=$(pkg_version "$repo")
[ -n "$version" ] || pkg_die "no version in $repo/pyproject.toml"
release=1.el9
appdir=/usr/lib/eni-agent
# Python 3.9 for byte-compiling: EL9's own minor version (magic number).
py39=${ENI_AGENT_PY39:-}
for candidate in "$py39" python3.9 /root/.pyenv/versions/3.9.18/bin/python; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null &&
        { py39=$candidate; break; }
    py39=
done

work=$(mktemp -d "${TMPDIR:-/tmp}/eni-agent-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree

# 1. The private tree: eni-agent's wheel and its dependencies for cp39.
pkg_log "building the private tree for CPython 3.9 (manylinux x86_64)"
/usr/bin/python3 -m venv "$work/pip" >&2
"$work/pip/bin/pip" install -q --disable-pip-version-check --upgrade pip 'setuptools>=68' wheel >&2
pkg_source_tree "$repo" "$work/src"
"$work/pip/bin/pip" wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$work/wheels" "$work/src" >&2
"$work/pip/bin/pip" install -q --disable-pip-version-check --no-compile \
    --target "$tree$appdir/site" --only-binary=:all: --implementation cp --python-version 3.9 \
    --abi cp39 --abi abi3 --abi none --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform any \
    "$work/wheels"/eni_agent-*.whl \
    "$(sed -n "s/^ *\"\(tomli[^;\"]*\);.*/\1/p" "$repo/pyproject.toml")" >&2
# (tomli by name: pip evaluates `python_version < '3.11'` for the machine's
# Python, not the target's)
rm -rf "$tree$appdir/site/bin"    # pyroute2's commands: only eni-agent is meant to run
if [ -n "$py39" ]; then
    # Compiled at the final path (-s/-p): tracebacks name the installed files,
    # and python never writes bytecode of its own there (rpm owns every file).
    "$py39" -m compileall -q -s "$tree" -p / "$tree$appdir/site" >&2
else
    pkg_log "no Python 3.9 here (ENI_AGENT_PY39): the package carries no .pyc (slower first start)"
fi
cat > "$tree/eni-agent-launcher" <<EOF
#!/usr/bin/python3.9 -I
# eni-agent, packaged: the private tree ($appdir/site) ahead of the system's.
import sys
sys.path.insert(0, "$appdir/site")
from eni_agent.main import main
sys.exit(main())
EOF
install -D -m 0755 "$tree/eni-agent-launcher" "$tree/usr/sbin/eni-agent"
rm "$tree/eni-agent-launcher"

# 2. Units, config, rt_protos name, docs, man pages, shell completions.
install_units "$repo/systemd" "$tree" /usr/lib/systemd/system /usr/sbin/eni-agent \
    /usr/share/doc/eni-agent/README.md
install -D -m 0644 "$here/config.toml" "$tree/etc/eni-agent/config.toml"
install -d -m 0755 "$tree/etc/iproute2/rt_protos.d"
echo "234 eni-agent" > "$tree/etc/iproute2/rt_protos.d/eni-agent.conf"
install -D -m 0644 "$here/cloud/90-eni-agent.cfg" "$tree/etc/cloud/cloud.cfg.d/90-eni-agent.cfg"
install -D -m 0644 "$repo/README.md" "$tree/usr/share/doc/eni-agent/README.md"

# Man pages and shell completions, rendered from the click commands and the
# config model (eni_agent/manpage.py) by the wheel installed in the build venv.
"$work/pip/bin/pip" install -q --disable-pip-version-check "$work/wheels"/eni_agent-*.whl >&2
mkdir -p "$work/generated"
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s) \
    "$work/pip/bin/python" -B -m eni_agent.manpage "$work/generated" >/dev/null
for page in "$work"/generated/*.[0-9]; do
    section=${page##*.}
    install -d -m 0755 "$tree/usr/share/man/man$section"
    gzip -9n < "$page" > "$tree/usr/share/man/man$section/${page##*/}.gz"
done
install -d -m 0755 "$tree/usr/share/bash-completion/completions" "$tree/usr/share/zsh/site-functions"
_ENI_AGENT_COMPLETE=bash_source "$work/pip/bin/eni-agent" > "$tree/usr/share/bash-completion/completions/eni-agent"
_ENI_AGENT_COMPLETE=zsh_source "$work/pip/bin/eni-agent" > "$tree/usr/share/zsh/site-functions/_eni-agent"
chmod 0644 "$tree/usr/share/bash-completion/completions/eni-agent" "$tree/usr/share/zsh/site-functions/_eni-agent"

# 3. The file list (see the spec): /etc's files are config, the directories
# the package creates there are its own; the private tree is owned whole.
{
    echo "$appdir"
    echo /usr/sbin/eni-agent
    (cd "$tree" && find usr/lib/systemd -type f | sort | sed 's|^|/|')
    echo "%doc /usr/share/doc/eni-agent"
    (cd "$tree" && find usr/share/man -type f | sort | sed 's|^|%doc /|')
    # The completion directories too (rpm allows shared directories): on an
    # image without zsh or bash-completion, nothing else owns them.
    echo "%dir /usr/share/bash-completion"
    echo "%dir /usr/share/bash-completion/completions"
    echo /usr/share/bash-completion/completions/eni-agent
    echo "%dir /usr/share/zsh"
    echo "%dir /usr/share/zsh/site-functions"
    echo /usr/share/zsh/site-functions/_eni-agent
    (cd "$tree" && find etc -type f -printf '%h\n' | sort -u | sed 's|^|%dir /|')
    # shared with cloud-init where it is installed; gone on erase where it is not
    echo "%dir /etc/cloud"
    (cd "$tree" && find etc -type f | sort | sed 's|^|%config(noreplace) /|')
} > "$work/files"

# 4. rpmbuild.
mkdir -p "$work/rpmbuild/SOURCES"
tar -C "$tree" --owner=0 --group=0 -cf "$work/rpmbuild/SOURCES/eni-agent-tree.tar" .
pkg_log "rpmbuild eni-agent-$version-$release"
rpmbuild -bb --quiet --nodeps \
    --define "_topdir $work/rpmbuild" \
    --define "_rpmdir $work/rpms" \
    --define "eni_version $version" \
    --define "eni_release $release" \
    --define "eni_filelist $work/files" \
    "$here/eni-agent.spec" >&2
rpms=("$work/rpms"/*/*.rpm)
[ ${#rpms[@]} -eq 1 ] || pkg_die "rpmbuild wrote ${#rpms[@]} packages: ${rpms[*]}"
rpm=$out/${rpms[0]##*/}
rm -f "$rpm"
mv "${rpms[0]}" "$rpm"
pkg_log "$rpm: $(du -k "$rpm" | cut -f1) KiB, built in $(( $(date +%s) - start )) s"
echo "$rpm"
