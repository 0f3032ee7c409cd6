"""A local folder that ignores case and Unicode normalisation (macOS's default APFS) must never
merge remote twins: ``A.ipynb`` and ``a.ipynb``, ``Sub/`` and ``sub/``, ``café`` composed and
decomposed are two files on the Linux remote.

Before: each pair became one local file holding whichever version came last, nbterm said
"received" for both and "A.ipynb was already there", and every later save of either twin backed up
the other as "edited locally". Invariant: every remote twin is home under a name of its own with
its own content after every cycle (0 merged, 0 stale), each pair is said once with both names,
and no local edit, backup or "already there" is claimed (there was no local edit).

The folding folder is a FUSE layer (tests/harness/foldfs.py): this kernel mounts neither ext4
``-O casefold`` nor vfat. It runs twice: with only the user's folder on it (a Linux laptop with a
case-insensitive share), and with nbterm's staging mirror on it too, as on a Mac, where rsync
itself would write one twin over the other.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from pathlib import Path

import pytest

from nbterm.services.sync.engine import SyncEngine
from nbterm.services.sync.events import (
    ConflictKept,
    FileReceived,
    SyncFailed,
    SyncWarning,
)
from nbterm.services.sync.folding import alternative
from tests.harness.folded import folding_folder
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

SAVES = 10
NFC = unicodedata.normalize("NFC", "café.ipynb")
NFD = unicodedata.normalize("NFD", "café.ipynb")
TWINS = {  # remote path -> where it is expected locally (the first of each pair keeps its name)
    "A.ipynb": "A.ipynb",
    "a.ipynb": alternative("a.ipynb"),
    "Sub/x.ipynb": "Sub/x.ipynb",
    "sub/x.ipynb": f"{alternative('sub')}/x.ipynb",
    NFD: NFD,  # (the decomposed é sorts first: "e" before "é")
    NFC: alternative(NFC),
}


def _content(path: str, version: int) -> str:
    return notebook(f"{path} version {version}")


def _stored(backing: Path, local: Path, mount: Path) -> dict[str, bytes]:
    """The local folder's files as stored (spelled exactly), read through the backing folder."""
    root = backing / local.relative_to(mount)
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and ".nbterm-" not in str(path.relative_to(root))
    }


@pytest.mark.parametrize("staging_folds", [False, True], ids=["local folds", "staging folds too"])
async def test_remote_twins_are_never_merged_and_no_local_edit_is_claimed(
    world: World, tmp_path: Path, staging_folds: bool
) -> None:
    with folding_folder(tmp_path / "fold") as mount:
        backing = tmp_path / "fold" / "backing"
        local = mount / "local nb"
        world.config(local=local)
        recorder = Recorder()
        engine = world.engine(recorder)
        if staging_folds:  # nbterm's state (its staging mirror) on the folding folder too
            state = mount / "state"
            state.mkdir(mode=0o700)
            paths = dataclasses.replace(world.paths, state_dir=state)
            engine = SyncEngine(engine.rule, paths, world.paths.ssh_config, recorder,
                                io_timeout=5)  # fmt: skip
        versions = dict.fromkeys(TWINS, 0)
        for path in TWINS:
            world.remote.write(path, _content(path, 0))
        await engine.cycle()
        first = list(recorder.events)

        merged, stale = 0, 0
        for save in range(1, SAVES + 1):
            path = list(TWINS)[save % len(TWINS)]
            versions[path] = save
            world.remote.write(path, _content(path, save))
            await engine.cycle()
            stored = _stored(backing, local, mount)
            for remote, place in TWINS.items():
                want = _content(remote, versions[remote]).encode()
                if stored.get(place) != want:
                    stale += 1
            merged += len(TWINS) - len({stored.get(place) for place in TWINS.values()})
        idle = await engine.cycle("timer")

    stored_names = set(stored)
    assert stored_names == set(TWINS.values()), f"stored locally: {sorted(stored_names)}"
    assert merged == 0 and stale == 0, f"{merged} merged, {stale} stale over {SAVES} saves"
    assert not recorder.of(ConflictKept), [e for e in recorder.of(ConflictKept)]
    assert not recorder.of(SyncFailed), recorder.of(SyncFailed)
    warnings = [e.message for e in recorder.of(SyncWarning) if isinstance(e, SyncWarning)]
    assert not any("already there" in w for w in warnings), warnings
    said = [w for w in warnings if "are one name in" in w]
    assert len(said) == 3, said  # each pair once, in the first cycle
    assert all(e in first for e in recorder.of(SyncWarning)), "a pair was said again"
    assert any(w.startswith(f"a.ipynb and A.ipynb are one name in {local}") for w in said), said
    assert any(f"placed as {alternative('a.ipynb')}" in w for w in said), said
    assert any(w.startswith("sub and Sub are one name") for w in said), said
    received = [e.path for e in first if isinstance(e, FileReceived)]
    assert sorted(received) == sorted(TWINS.values()), received
    assert idle.files == (), f"an idle cycle brought {idle.files} again"
