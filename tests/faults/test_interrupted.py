"""nbterm killed (SIGKILL, SIGTERM, SIGINT) at random points of a large one-shot sync.

Invariant: the next `nbterm sync` brings every notebook home byte-identical and exits 0; nothing
nbterm started (rsync, its ssh) outlives it; no temporary file stays in the user's folder.
Each signal is sent in RUNS runs, at a moment drawn uniformly over a whole sync's duration.
"""

from __future__ import annotations

import io
import os
import random
import signal
import tarfile
import time
from pathlib import Path

import pytest

from tests.faults.checker import check_home, stray_temp_files
from tests.harness.sync import notebook
from tests.harness.world import World

RUNS = 10
NOTEBOOKS = 300


def fill_remote(world: World) -> dict[str, bytes]:
    """NOTEBOOKS notebooks of about 20 kB in a few folders, sent as one tar stream."""
    expected = {f"part{i % 7}/nb{i}.ipynb": notebook(f"n{i}", pad=20_000).encode()
                for i in range(NOTEBOOKS)}  # fmt: skip
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel, data in expected.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    world.remote.sh(f"tar -x -C {world.remote.folder}", buffer.getvalue())
    return expected


def ours_running(world: World) -> list[str]:
    """Command lines of live processes that name this test's state or runtime folder."""
    marks = (str(world.paths.state_dir), str(world.paths.runtime_dir))
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        line = raw.replace(b"\0", b" ").decode(errors="replace")
        if any(mark in line for mark in marks) and "pytest" not in line:
            found.append(f"{entry}: {line[:160]}")
    return found


def wait_gone(world: World, *, master_may_stay: bool, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [line for line in ours_running(world)
                if not (master_may_stay and "[mux]" in line)]  # fmt: skip
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=str)
def test_a_killed_sync_heals_on_the_next_one(world: World, tmp_path: Path, sig: int) -> None:
    expected = fill_remote(world)
    world.config(tmp_path / "first")
    started = time.monotonic()
    first = world.nbterm("sync", "box")
    whole = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr
    rng = random.Random(sig)
    outcomes = []
    for run in range(RUNS):
        world.config(tmp_path / f"run {run}")
        proc = world.popen("sync", "box")
        time.sleep(rng.uniform(0.2, whole))
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        outcomes.append(proc.returncode)
        left = wait_gone(world, master_may_stay=sig == signal.SIGKILL)
        assert not left, f"run {run}: nbterm's children outlived it: {left}"
        again = world.nbterm("sync", "box")
        assert again.returncode == 0, f"run {run}: {again.stdout}{again.stderr}"
        check_home(world.local, remote=expected)
        assert stray_temp_files(world.local) == [], f"run {run}"
    print(f"signal {sig}: {RUNS} runs, exit codes {outcomes}, whole sync {whole:.2f}s")
