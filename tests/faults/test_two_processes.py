"""Two nbterm processes on one rule (the cockpit and a ``sync --watch``, a one-shot beside
either): one at a time in the rule's staging mirror and record (issue 21, item 7: they raced,
7-22 false "being written locally" and "No such file or directory" a run).

Invariants: while another process holds the rule, a background cycle leaves the files alone and
says who holds it (once); an asked-for cycle waits for the other to finish, then runs; a holder
killed with SIGKILL leaves no lock behind. 5 rounds of two real engines in two processes
cycling the same rule together: no error, no false claim, every file home.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time

from nbterm.services.sync.engine import SyncPlaces
from nbterm.services.sync.events import FileFailed, SyncFailed, SyncWarning
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.argv = ["nbterm", "sync", "--watch"]
    from nbterm.services.sync.rule_lock import RuleLock
    lock = RuleLock(Path(sys.stdin.readline().strip()))
    assert lock.try_acquire()
    print("held", flush=True)
    time.sleep(float(sys.stdin.readline()))
    """
)


def holder(path: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{path}\n{seconds}\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "held"
    return proc


async def test_a_rule_held_by_another_process_is_left_to_it_then_waited_for(
    world: World,
) -> None:
    world.remote.write("a.ipynb", notebook("a1"))
    recorder = Recorder()
    engine = world.engine(recorder)
    places = SyncPlaces.for_rule(world.config().sync[0], world.paths)
    lock = str(places.manifest.with_name("lock"))
    other = holder(lock, 60)
    try:
        for _ in range(2):
            done = await engine.cycle("timer")
            assert not done.ok
        assert not (world.local / "a.ipynb").exists()  # left to the other process
        said = [e.message for e in recorder.of(SyncWarning)]  # type: ignore[attr-defined]
        assert said == [
            f"another nbterm is syncing this rule (pid {other.pid}, nbterm sync): this one "
            "leaves it to that one and looks again at its next cycle"
        ]  # said once
    finally:
        other.send_signal(signal.SIGKILL)  # the kernel lets go of a killed process's lock
        other.wait()
    assert (await engine.cycle("timer")).ok
    assert (world.local / "a.ipynb").read_text() == notebook("a1")
    # an asked-for cycle waits for the other one's to end, then runs
    world.remote.write("a.ipynb", notebook("a2"))
    other = holder(lock, 1.5)
    try:
        started = time.monotonic()
        assert (await engine.cycle("now")).ok
        assert time.monotonic() - started >= 1.0
    finally:
        other.wait()
    assert (world.local / "a.ipynb").read_text() == notebook("a2")


WRITER = (
    "cd {folder} || exit 1; {{ n=0; while :; do n=$((n+1)); for i in $(seq 0 39); do "
    'printf \'{{"cells": [], "metadata": {{"v": %s}}, "nbformat": 4, '
    '"nbformat_minor": 5}}\\n\' $n > .n$i.tmp && mv .n$i.tmp n$i.ipynb; done; '
    "sleep 0.05; done; }} </dev/null >/dev/null 2>&1 & echo $!"
)


async def test_two_engines_in_two_processes_on_one_rule_never_race(world: World) -> None:
    """The remote rewrites 40 notebooks without pause while two processes cycle the rule, 8
    cycles each, 3 rounds; then one cycle, and every local copy is the remote's last."""
    world.remote.write("n0.ipynb", notebook("start"))
    config_file = world.paths.config_file
    world.config()
    script = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from nbterm.config import load_config
        from nbterm.locations import resolve_paths
        from nbterm.services.sync.engine import SyncEngine
        paths = resolve_paths()
        config = load_config(Path({str(config_file)!r}))
        said = []
        engine = SyncEngine(config.sync[0], paths, paths.ssh_config, said.append, io_timeout=5)
        async def main():
            for _ in range(8):
                await engine.cycle("now")
        asyncio.run(main())
        bad = [e for e in said if type(e).__name__ in ("FileFailed", "SyncFailed")
               or "being written" in str(e) or "No such file" in str(e)]
        print(len(bad), bad)
        """
    )
    recorder = Recorder()
    engine = world.engine(recorder, keep_config=True)
    for _round in range(3):
        writer = world.remote.sh(WRITER.format(folder=world.remote.folder)).strip()
        try:
            other = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(8):
                await engine.cycle("now")
            out, _ = await other.communicate()
        finally:
            world.remote.sh(f"kill {writer}; sleep 0.2; true")
        assert out.decode().startswith("0 "), out.decode()[-3000:]
        assert (await engine.cycle("now")).ok
        for index in range(40):
            remote = world.remote.sh(f"cat {world.remote.folder}/n{index}.ipynb")
            assert (world.local / f"n{index}.ipynb").read_text() == remote
    bad = [e for e in recorder.events if isinstance(e, (FileFailed, SyncFailed))
           or "being written" in str(e) or "No such file" in str(e)]  # fmt: skip
    assert bad == [], bad
