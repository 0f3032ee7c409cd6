"""Local edits racing remote saves: the user's own edits are never lost, whatever the timing.

Invariant (checker): every local edit survives, in the folder or in its backups; every remote
version that arrived is whole. Timing-dependent cases run RUNS times each.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from pathlib import Path

from nbterm.services.sync.events import ConflictKept
from tests.faults.checker import check_home
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

RUNS = 30


def save_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.editor-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_in_place(path: Path, data: bytes, pieces: int = 8, pause: float = 0.004) -> None:
    """As Jupyter saves: truncate, then write in pieces (a reader can see half a file)."""
    step = max(1, len(data) // pieces)
    with path.open("wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(pause)


async def _race(world: World, saver: str, seed: int) -> tuple[int, int]:
    """RUNS rounds; in round k the remote saves a new version of notebook k while the user saves
    notebook k locally at a random moment around the cycle that brings the remote version.
    (Each round has a notebook of its own: a user's later save of the same notebook replaces
    their earlier one by their own hand, which is no loss of nbterm's.)"""
    rng = random.Random(seed)
    recorder = Recorder()
    engine = world.engine(recorder)
    for run in range(RUNS):
        world.remote.write(f"a{run}.ipynb", notebook(f"remote {run} v0"))
    await engine.cycle()
    edits: list[bytes] = []
    for run in range(RUNS):
        target = world.local / f"a{run}.ipynb"
        world.remote.write(target.name, notebook(f"remote v{run}", pad=rng.randint(1, 3) << 20))
        edit = notebook(f"local edit {run}", pad=rng.randint(1, 3) << 20).encode()
        edits.append(edit)
        delay = rng.uniform(0.0, 0.3)

        def write(target: Path = target, edit: bytes = edit, delay: float = delay) -> None:
            time.sleep(delay)
            if saver == "atomic":
                save_atomically(target, edit)
            else:
                save_in_place(target, edit)

        writer = threading.Thread(target=write)
        writer.start()
        await engine.cycle()
        await asyncio.to_thread(writer.join)
    await engine.cycle()
    check_home(world.local, remote={}, edits=edits)
    conflicts = recorder.of(ConflictKept)
    backups = {e.backup for e in conflicts if isinstance(e, ConflictKept)}
    assert len(backups) == len(conflicts), "two conflicts were reported with the same backup"
    for backup in backups:  # every backup is a whole notebook, never a torn copy
        assert Path(backup).read_bytes() in set(edits)
    return len(edits), len(conflicts)


async def test_atomic_local_saves_racing_remote_saves(world: World) -> None:
    edits, conflicts = await _race(world, "atomic", 1)
    print(f"atomic: {edits} edits, {conflicts} conflicts kept, 0 lost")


async def test_in_place_local_saves_racing_remote_saves(world: World) -> None:
    edits, conflicts = await _race(world, "in place", 2)
    print(f"in place: {edits} edits, {conflicts} conflicts kept, 0 lost")


async def test_many_conflicts_on_one_notebook_within_a_second(world: World) -> None:
    recorder = Recorder()
    engine = world.engine(recorder)
    target = world.local / "a.ipynb"
    world.remote.write("a.ipynb", notebook("remote v0"))
    await engine.cycle()
    edits = []
    for run in range(1, 11):  # about 0.1 s a round: several rounds share each second
        edit = notebook(f"local edit {run}").encode()
        edits.append(edit)
        target.write_bytes(edit)
        world.remote.write("a.ipynb", notebook(f"remote v{run}"))
        await engine.cycle()
    check_home(world.local, remote={"a.ipynb": notebook("remote v10").encode()}, edits=edits)
    conflicts = [e for e in recorder.of(ConflictKept) if isinstance(e, ConflictKept)]
    assert len({e.backup for e in conflicts}) == len(conflicts) == 10
