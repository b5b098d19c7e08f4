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


def test_a_configmap_swap_is_seen_at_once(tmp_path, watches):
    configmap(tmp_path, "2026_12_05_1")
    watch = watches(tmp_path / "metadata.json")
    assert quiet(watch)
    configmap(tmp_path, "2026_12_05_2")
    assert wait_changed(watch)
    # watched along the new chain: the next swap, and a write in the new directory
    configmap(tmp_path, "2026_12_05_3")
    assert wait_changed(watch)
    (tmp_path / "..2026_12_05_3" / "metadata.json").write_bytes(DOC)
    assert wait_changed(watch)


def test_a_directory_symlink_swapped_is_seen_and_the_old_target_forgotten(tmp_path, watches):
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "metadata.json").write_bytes(DOC)
    os.symlink("v1", tmp_path / "current")
    watch = watches(tmp_path / "current" / "metadata.json")
    os.symlink("v2", tmp_path / "current.new")  # ln -sfn v2 current, atomically
    os.rename(tmp_path / "current.new", tmp_path / "current")
    assert wait_changed(watch)
    (tmp_path / "v1" / "metadata.json").write_bytes(DOC + b" ")
    assert quiet(watch), "still watching the old target"
    (tmp_path / "v2" / "metadata.json").write_bytes(DOC + b" ")
    assert wait_changed(watch)


def test_a_symlink_to_the_file_repointed_is_seen(tmp_path, watches):
    (tmp_path / "a.json").write_bytes(DOC)
    (tmp_path / "b.json").write_bytes(DOC)
    os.symlink("a.json", tmp_path / "metadata.json")
    watch = watches(tmp_path / "metadata.json")
    (tmp_path / "metadata.json").unlink()
    os.symlink("b.json", tmp_path / "metadata.json")
    assert wait_changed(watch)
    (tmp_path / "b.json").write_bytes(DOC + b" ")
    assert wait_changed(watch)


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_the_file_itself_changed(tmp_path, watches, how):
    path = tmp_path / "metadata.json"
    path.write_bytes(DOC)
    watch = watches(path)
    (tmp_path / "other.json").write_bytes(DOC)
    assert quiet(watch), "a neighbour is not the file"
    if how == "in place":
        with open(path, "ab") as f:
            f.write(b" ")
    else:
        (tmp_path / ".tmp").write_bytes(DOC)
        os.rename(tmp_path / ".tmp", path)
    assert wait_changed(watch)


def test_directories_that_appear_later(tmp_path, watches):
    path = tmp_path / "a" / "b" / "metadata.json"
    watch = watches(path)
    (tmp_path / "a").mkdir()
    assert wait_changed(watch)
    (tmp_path / "a" / "b").mkdir()
    assert wait_changed(watch)
    path.write_bytes(DOC)
    assert wait_changed(watch)


def test_the_file_s_own_directory_replaced_by_rename(tmp_path, watches):
    for name in ("etc", "etc.new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.json").write_bytes(DOC)
    watch = watches(tmp_path / "etc" / "metadata.json")
    os.rename(tmp_path / "etc", tmp_path / "etc.old")
    assert wait_changed(watch)
    os.rename(tmp_path / "etc.new", tmp_path / "etc")
    assert wait_changed(watch)
    (tmp_path / "etc.old" / "metadata.json").write_bytes(DOC + b" ")
    assert quiet(watch), "still watching the old directory"
    (tmp_path / "etc" / "metadata.json").write_bytes(DOC + b" ")
    assert wait_changed(watch)


def test_the_directory_removed_and_made_again(tmp_path, watches):
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "metadata.json").write_bytes(DOC)
    watch = watches(directory / "metadata.json")
    shutil.rmtree(directory)
    assert wait_changed(watch)
    directory.mkdir()
    assert wait_changed(watch)
    (directory / "metadata.json").write_bytes(DOC)
    assert wait_changed(watch)


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
