"""Every file that waits is said, once, in every face (issue 21, item 6): a background cycle that
leaves a file waiting (being written locally) printed nothing in ``up``, ``sync --watch`` or the
cockpit, since a timer's cycle that brings nothing is quiet. Now the wait is a FileWaiting event,
said by every face through the one presenter, once per reason, and the arrival is said after.
"""

from __future__ import annotations

import pytest

from nbterm.presenters import quiet, words
from nbterm.services.sync import promote as promote_module
from nbterm.services.sync.events import FileReceived, FileWaiting
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World


async def test_a_file_left_waiting_by_a_background_cycle_is_said_once_then_its_arrival(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.remote.write("a.ipynb", notebook("one"))
    recorder = Recorder()
    engine = world.engine(recorder)
    assert (await engine.cycle("timer")).ok
    (world.local / "a.ipynb").write_text(notebook("being saved")[:25])  # mid-save, just now
    world.remote.write("a.ipynb", notebook("two"))
    for _ in range(3):
        await engine.cycle("timer")
    waiting = recorder.of(FileWaiting)
    assert [(e.path, e.reason) for e in waiting] == [  # type: ignore[attr-defined]
        ("a.ipynb", "being written locally: next cycle")
    ]  # said once, however many cycles it waits
    shown = [words(e) for e in recorder.events if not quiet(e)]
    assert "waiting: a.ipynb: being written locally: next cycle" in " ".join(
        text or "" for text in shown
    )
    monkeypatch.setattr(promote_module, "LOCAL_SETTLE_SECONDS", 0.0)
    await engine.cycle("timer")  # settled (and broken): backed up, the remote's placed
    assert recorder.of(FileReceived)[-1].path == "a.ipynb"  # type: ignore[attr-defined]
    assert (world.local / "a.ipynb").read_text() == notebook("two")
