"""nbterm's own records lost or damaged, odd names, and the user's folder moved away.

Invariants (checker): every remote notebook home byte-identical; no local file vanished; every
local edit survives.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nbterm.presenters import Printer
from nbterm.services.sync.engine import SyncPlaces
from nbterm.services.sync.events import ConflictKept
from tests.faults.checker import check_home, said
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World


def places(world: World) -> SyncPlaces:
    return SyncPlaces.for_rule(world.config().sync[0], world.paths)


@pytest.mark.parametrize(
    "manifest",
    [b'{"files": null}', b'{"files": [1, 2], "rejected": 5}', b"[]", b"\x00\xff garbage", None],
    ids=["files-null", "wrong-types", "a-list", "garbage", "deleted"],
)
async def test_a_damaged_manifest(world: World, manifest: bytes | None) -> None:
    names = [f"n{i}.ipynb" for i in range(5)]
    for name in names:
        world.remote.write(name, notebook(name))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    (world.local / "n0.ipynb").write_text(notebook("my local edit"))
    for name in names[1:]:
        world.remote.write(name, notebook(name + " v2"))
    # staged but not yet promoted: what a kill after rsync leaves
    path = places(world).manifest
    if manifest is None:
        path.unlink()
    else:
        path.write_bytes(manifest)
    recorder = Recorder()
    done = await world.engine(recorder).cycle()
    assert done.ok, said(recorder)
    expected = {name: notebook(name + " v2").encode() for name in names[1:]}
    check_home(world.local, remote=expected, edits=[notebook("my local edit").encode()])
    text = said(recorder)
    assert "Traceback" not in text
    assert text.count("could not be used") == 1  # one notice that nbterm's record was rebuilt
    for event in recorder.of(ConflictKept):
        assert isinstance(event, ConflictKept)
        assert "edited locally" not in (Printer().line(event) or "")  # nbterm cannot know


async def test_staged_but_never_promoted(world: World) -> None:
    """What a kill between rsync and promotion leaves: staging is up to date, home is not."""
    for i in range(20):
        world.remote.write(f"n{i}.ipynb", notebook(f"n{i}"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    for i in range(20):
        world.remote.write(f"n{i}.ipynb", notebook(f"n{i} v2"))
    world.remote.write("new.ipynb", notebook("new"))
    staged = subprocess.run(engine.rsync_command(), capture_output=True, check=False)
    assert staged.returncode == 0, staged.stderr
    done = await engine.cycle()
    assert done.ok
    expected = {f"n{i}.ipynb": notebook(f"n{i} v2").encode() for i in range(20)}
    check_home(world.local, remote={**expected, "new.ipynb": notebook("new").encode()})
    assert len(done.files) == 21


async def test_the_local_folder_moved_away(world: World, tmp_path: Path) -> None:
    names = [f"n{i}.ipynb" for i in range(10)]
    for name in names:
        world.remote.write(name, notebook(name))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    await engine.cycle("timer")  # an idle timer cycle, the cheapest kind, after a full one
    world.local.rename(tmp_path / "moved")
    done = await engine.cycle("timer")
    assert done.ok
    check_home(world.local, remote={name: notebook(name).encode() for name in names})
    assert "restored" in said(recorder)


async def test_a_deleted_local_copy_comes_back_on_an_idle_timer_cycle(world: World) -> None:
    world.remote.write("sub/a.ipynb", notebook("a"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    await engine.cycle("timer")
    (world.local / "sub" / "a.ipynb").unlink()
    await engine.cycle("timer")
    assert (world.local / "sub" / "a.ipynb").read_text() == notebook("a")


async def test_a_deliberate_deletion_stays_deleted_when_asked(world: World) -> None:
    world.remote.write("keep.ipynb", notebook("keep"))
    world.remote.write("drop.ipynb", notebook("drop"))
    recorder = Recorder()
    engine = world.engine(recorder, restore_deleted=False)
    await engine.cycle()
    (world.local / "drop.ipynb").unlink()
    done = await engine.cycle("timer")
    assert done.ok
    assert not (world.local / "drop.ipynb").exists()
    world.remote.write("drop.ipynb", notebook("drop, a new version"))
    await engine.cycle()
    assert (world.local / "drop.ipynb").read_text() == notebook("drop, a new version")


async def test_a_name_that_is_not_utf8(world: World) -> None:
    raw = b"caf\xe9 \x1b[31m.ipynb"
    data = notebook("latin-1 name").encode()
    world.remote.sh(f"cd {world.remote.folder} && cat > \"$(printf 'caf\\351 \\033[31m.ipynb')\"",
                    data)  # fmt: skip
    world.remote.write("plain.ipynb", notebook("plain"))
    recorder = Recorder()
    done = await world.engine(recorder).cycle()
    assert done.ok
    local = os.fsencode(world.local) + b"/" + raw
    with open(local, "rb") as handle:
        assert handle.read() == data
    text = said(recorder)
    assert "\x1b" not in text
    assert "\ufffd" not in text
    assert "caf\\xe9" in text
    assert len(done.files) == 2
