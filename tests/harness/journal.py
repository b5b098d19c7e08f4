"""A real systemd-journald for one command, in a private mount namespace:
the command's stderr is its journal stream (JOURNAL_STREAM), its native
socket is at /run/systemd/journal/socket there, and the journal files land in
a directory of the test's, read back with `journalctl -D DIR -o json`.

    argv = with_journald(tmp_path / "journal", argv)   # run argv as usual
    journal_entries(tmp_path / "journal", "ENI_ID=eni-...")

Nothing of the host's journal is touched: /run/systemd, /run/log and
/var/log/journal are tmpfs (or the test's directory) in that namespace only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

JOURNALD = next((p for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")
                 if Path(p).exists()), None)

_WRAPPER = r'''
set -e
dir=$1; journald=$2; shift 2
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/journal
mount -t tmpfs -o mode=0755 tmpfs /run/log
mkdir -p /run/log/journal
mount --bind "$dir" /run/log/journal
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
"$journald" </dev/null >/dev/null 2>&1 &
i=0
while [ ! -S /run/systemd/journal/socket ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "journald did not start" >&2; exit 1; }
    sleep 0.05
done
JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)
export JOURNAL_STREAM
exec "$@"
'''


def journald_available() -> bool:
    return JOURNALD is not None and shutil.which("journalctl") is not None \
        and shutil.which("unshare") is not None


def with_journald(directory: Path, argv: list[str]) -> list[str]:
    """`argv` run with a journald of its own writing to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "bash", "-c", _WRAPPER,
            "with-journald", str(directory), JOURNALD, *argv]


def journal_entries(directory: Path, *matches: str) -> list[dict]:
    """The entries so far (journalctl's JSON), filtered by FIELD=value matches."""
    run = subprocess.run(["journalctl", "-D", str(directory), "-o", "json", "--no-pager",
                          *matches], capture_output=True, text=True, timeout=30)
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
