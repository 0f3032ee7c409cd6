"""A synced folder on an instance store (a disk a stop erases): found, and then no stop comes
without a final sync that completed, a limit's neither (services/host/down.py)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from nbterm.services.cloud.instance import Instance
from nbterm.services.host.down import SyncedHome, sync_then_stop
from nbterm.services.remote.storage import INSTANCE_STORE_MODEL, parse, probe_command


def test_the_probe_runs_in_a_real_shell_and_finds_no_instance_store_here(tmp_path: Path) -> None:
    folder = tmp_path / "with space"
    folder.mkdir()
    done = subprocess.run(["bash", "-c", probe_command([str(folder), "~/missing"])],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["0", "1"], done.stdout
    assert parse(done.stdout, [str(folder), "~/missing"]) == []


def test_only_the_folders_asked_about_come_back() -> None:
    folders = ["~/nb", "/data/nb"]
    output = f"0 Amazon Elastic Block Store\n1 {INSTANCE_STORE_MODEL}\n7 {INSTANCE_STORE_MODEL}\n"
    assert parse(output, folders) == ["/data/nb"]


def test_a_limit_never_stops_an_instance_store_without_a_completed_sync() -> None:
    stops: list[int] = []
    notes: list[str] = []

    async def sync() -> SyncedHome:
        return SyncedHome("failed", "the link is down")

    async def stop() -> Instance | None:
        stops.append(1)
        return None

    result = asyncio.run(sync_then_stop(
        "budget", sync=sync, stop=stop, note=notes.append, grace=0.3, retry_first=0.1,
        erased_by_a_stop=["/data/nb"],
    ))  # fmt: skip
    assert not result.stopped and stops == []
    assert "NOT stopped" in result.words and "/data/nb is on its instance store" in result.words
    # the same limit on an EBS-only instance stops anyway, after the grace (the disk keeps it)
    again = asyncio.run(sync_then_stop(
        "budget", sync=sync, stop=stop, note=notes.append, grace=0.3, retry_first=0.1,
    ))  # fmt: skip
    assert again.stopped and stops == [1]
