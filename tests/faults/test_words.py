"""What nbterm says about a failing sync is true: a killed ControlMaster is not an unreachable
host, and a failure repeated every cycle is said once. (That one-shot sync promises no next
cycle is checked on the words themselves, in tests/unit/test_presenters.py.)"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess

from nbterm.services.sync.events import SyncFailed
from tests.faults.checker import said
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World


async def test_a_killed_control_master_mid_transfer(world: World) -> None:
    world.remote.write("big.ipynb", notebook("v1", pad=30_000_000))
    recorder = Recorder()
    engine = world.engine(recorder)
    engine.bwlimit_kib = 5000
    task = asyncio.create_task(engine.cycle())
    await asyncio.sleep(1.5)
    check = subprocess.run(["ssh", "-F", str(world.paths.ssh_config), "-O", "check", "box"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    match = re.search(r"pid=(\d+)", check.stderr)
    assert match, check.stderr
    os.kill(int(match.group(1)), signal.SIGKILL)
    done = await task
    text = said(recorder)
    if not done.ok:
        assert "unreachable" not in text, text
        assert "closed mid-transfer" in text, text
    engine.bwlimit_kib = None
    again = await engine.cycle()
    assert again.ok
    assert (world.local / "big.ipynb").read_text() == notebook("v1", pad=30_000_000)


async def test_a_failure_repeated_every_cycle_is_said_once(world: World) -> None:
    world.remote.write("a.ipynb", notebook("a"))
    recorder = Recorder()
    engine = world.engine(recorder)
    await engine.cycle()
    world.remote.sh(f"chmod 000 {world.remote.folder}")
    try:
        for _ in range(5):
            await engine.cycle("timer")
    finally:
        world.remote.sh(f"chmod 755 {world.remote.folder}")
    failures = recorder.of(SyncFailed)
    assert len(failures) == 1, said(recorder)
    await engine.cycle("timer")
    assert "works again" in said(recorder)
