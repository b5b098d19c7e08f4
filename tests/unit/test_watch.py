"""The metadata file's watch sees a change at once however the file is
replaced: written in place, renamed over, or reached through a symlink that is
swapped (a Kubernetes ConfigMap's `..data`, a directory symlink). Swaps used
to be seen only at the periodic resync. inotify on tmp_path: no root."""

from __future__ import annotations

import os
import select
import shutil
from pathlib import Path

import pytest

from eni_agent.watch import FileWatch, watched_names

DOC = b'{"mac": "00:16:3e:00:00:01"}\n'


def wait_changed(watch: FileWatch, timeout: float = 2.0) -> bool:
    """True if the watch reports a change within `timeout` seconds."""
    readable, _, _ = select.select([watch], [], [], timeout)
    return bool(readable) and watch.changed()


def quiet(watch: FileWatch) -> bool:
    """No change reported (events that do not concern the file may be drained)."""
    return not wait_changed(watch, 0.2)


@pytest.fixture
def watches():
    made = []

    def make(path: Path) -> FileWatch:
        made.append(FileWatch(str(path)))
        return made[-1]
    yield make
    for watch in made:
        watch.close()


def configmap(root: Path, version: str) -> None:
    """What kubelet does on a ConfigMap update: the data in a new timestamped
    directory, `..data` swapped to it by rename, the old directory removed."""
    new = root / f"..{version}"
    new.mkdir()
    (new / "metadata.json").write_bytes(DOC + version.encode())
    old = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    os.symlink(new.name, root / "..data_tmp")
    os.rename(root / "..data_tmp", root / "..data")
    if old is not None:
        shutil.rmtree(root / old)
    if not (root / "metadata.json").is_symlink():
        os.symlink("..data/metadata.json", root / "metadata.json")


def do(root: Path, step: tuple) -> None:
    """One step of a scenario, on names relative to `root`."""
    what, *names = step
    first = root / names[0]
    if what == "mkdir":
        first.mkdir()
    elif what == "write":  # a new file, or truncated and written
        first.write_bytes(DOC + b"".join(n.encode() for n in names[1:]))
    elif what == "append":
        with open(first, "ab") as f:
            f.write(b" ")
    elif what == "symlink":  # symlink TARGET NAME
        os.symlink(names[0], root / names[1])
    elif what == "rename":
        os.rename(first, root / names[1])
    elif what == "unlink":
        first.unlink()
    elif what == "rmtree":
        shutil.rmtree(first)
    elif what == "configmap":
        configmap(root, names[0])
    else:
        raise AssertionError(f"no step {what!r}")


SEEN, QUIET = "seen", "quiet"


@pytest.mark.parametrize("before, watched, steps", [
    pytest.param(
        [("configmap", "2026_12_05_1")], "metadata.json",
        [(None, QUIET),
         (("configmap", "2026_12_05_2"), SEEN),
         # watched along the new chain: the next swap, and a write in the new directory
         (("configmap", "2026_12_05_3"), SEEN),
         (("write", "..2026_12_05_3/metadata.json"), SEEN)],
        id="a-configmap-swap"),
    pytest.param(
        [("mkdir", "v1"), ("write", "v1/metadata.json"), ("mkdir", "v2"),
         ("write", "v2/metadata.json"), ("symlink", "v1", "current")],
        "current/metadata.json",
        [(("symlink", "v2", "current.new"), None),  # ln -sfn v2 current, atomically
         (("rename", "current.new", "current"), SEEN),
         (("write", "v1/metadata.json", " "), QUIET),  # the old target is forgotten
         (("write", "v2/metadata.json", " "), SEEN)],
        id="a-directory-symlink-swapped"),
    pytest.param(
        [("write", "a.json"), ("write", "b.json"), ("symlink", "a.json", "metadata.json")],
        "metadata.json",
        [(("unlink", "metadata.json"), None),
         (("symlink", "b.json", "metadata.json"), SEEN),
         (("write", "b.json", " "), SEEN)],
        id="a-symlink-to-the-file-repointed"),
    pytest.param(
        [("write", "metadata.json")], "metadata.json",
        [(("write", "other.json"), QUIET),  # a neighbour is not the file
         (("append", "metadata.json"), SEEN)],
        id="the-file-written-in-place"),
    pytest.param(
        [("write", "metadata.json")], "metadata.json",
        [(("write", "other.json"), QUIET),  # a neighbour is not the file
         (("write", ".tmp"), None),
         (("rename", ".tmp", "metadata.json"), SEEN)],
        id="the-file-renamed-over"),
    pytest.param(
        [], "a/b/metadata.json",
        [(("mkdir", "a"), SEEN), (("mkdir", "a/b"), SEEN),
         (("write", "a/b/metadata.json"), SEEN)],
        id="directories-that-appear-later"),
    pytest.param(
        [("mkdir", "etc"), ("write", "etc/metadata.json"),
         ("mkdir", "etc.new"), ("write", "etc.new/metadata.json")],
        "etc/metadata.json",
        [(("rename", "etc", "etc.old"), SEEN),
         (("rename", "etc.new", "etc"), SEEN),
         (("write", "etc.old/metadata.json", " "), QUIET),  # the old directory is forgotten
         (("write", "etc/metadata.json", " "), SEEN)],
        id="the-files-own-directory-replaced-by-rename"),
    pytest.param(
        [("mkdir", "etc"), ("write", "etc/metadata.json")], "etc/metadata.json",
        [(("rmtree", "etc"), SEEN), (("mkdir", "etc"), SEEN),
         (("write", "etc/metadata.json"), SEEN)],
        id="the-directory-removed-and-made-again"),
])
def test_the_watch_sees_each_change_of_the_file(tmp_path, watches, before, watched, steps):
    """`before` done, then the watch made on `watched`; after each step the
    watch reports a change (SEEN), none (QUIET), or is not asked (None)."""
    for step in before:
        do(tmp_path, step)
    watch = watches(tmp_path / watched)
    for step, expect in steps:
        if step is not None:
            do(tmp_path, step)
        if expect == SEEN:
            assert wait_changed(watch), step
        elif expect == QUIET:
            assert quiet(watch), step


def test_the_names_watched_along_a_configmap_chain(tmp_path):
    configmap(tmp_path, "2026_12_05_1")
    names, target = watched_names(str(tmp_path / "metadata.json"))
    root = str(tmp_path)
    assert names == [(root, "metadata.json"), (root, "..data"),
                     (f"{root}/..2026_12_05_1", "metadata.json")]
    assert target == (f"{root}/..2026_12_05_1", "metadata.json")


def test_the_first_missing_name_is_watched(tmp_path):
    names, target = watched_names(str(tmp_path / "a" / "b" / "metadata.json"))
    assert names == [(str(tmp_path), "a")] and target == ("", "")
