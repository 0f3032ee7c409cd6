"""Sync while the host is up: remote saves arrive within seconds; down does a final sync."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.host.session import HostSession
from nbterm.services.remote.ssh import run
from nbterm.services.sync.events import CycleDone
from nbterm.services.sync.watcher import WatchMode
from tests.harness.procs import end_process
from tests.harness.remote import remote_config_text, remote_shell, sync_rule, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


def notebook(text: str) -> str:
    return json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": text}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})  # fmt: skip


@pytest.fixture
def folder() -> str:
    return f"nbterm-live-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def config(
    sshd: SshServer, write_config: Callable[[str], Path], tmp_path: Path, folder: str
) -> LoadedConfig:
    text = remote_config_text(sshd, local_port=30157)
    text += sync_rule(folder, tmp_path / "local", extra="interval = 600\n")
    return load_config(write_config(text))


def watch_mode(name: str) -> WatchMode:
    assert name in ("poll", "inotify")
    return "poll" if name == "poll" else "inotify"


async def wait_for_file(path: Path, content: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if path.exists() and path.read_text() == content:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} did not get the new content within {timeout}s")


@pytest.mark.parametrize("mode", ["poll", "inotify"])
async def test_a_remote_save_arrives_within_seconds(
    config: LoadedConfig, paths: Paths, folder: str, tmp_path: Path, mode: str
) -> None:
    if mode == "inotify" and shutil.which("inotifywait") is None:
        pytest.fail("inotifywait is missing: run tests/setup.sh (it installs inotify-tools)")
    events: list[object] = []
    session = HostSession(
        config,
        "box",
        paths,
        verifier=trust_all,
        on_event=events.append,
        watch_mode=mode,  # type: ignore[arg-type]
    )
    link = None
    try:
        await session.up()
        link = await session.remote.connection.get(5)
        await run(link, f"mkdir -p {folder}")
        await asyncio.sleep(1.5)  # the watcher is running
        local = tmp_path / "local" / "saved.ipynb"
        latencies = []
        for index in range(3):
            content = notebook(f"save {index}")
            await run(link, f"cat > {folder}/saved.ipynb <<'EOF'\n{content}\nEOF")
            latencies.append(await wait_for_file(local, content + "\n", 5))
        assert max(latencies) < 3.0, latencies
        triggers = {e.trigger for e in events if isinstance(e, CycleDone)}
        assert "remote change" in triggers  # not the 600 s timer
    finally:
        if link is not None:
            await run(link, f"rm -rf {folder}")
        await session.down(final_sync=False)


def test_sync_once_from_the_cli(
    config: LoadedConfig, sshd: SshServer, folder: str, tmp_path: Path
) -> None:
    fingerprint = asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint()
    remote_shell(sshd, f"mkdir -p {folder} && cat > {folder}/a.ipynb", notebook("cli").encode())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nbterm", "sync", "box", "--accept-host-key", fingerprint],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"box:~/{folder}/: received a.ipynb" in done.stdout
        assert re.search(r"now sync done: 1 file\(s\)", done.stdout)
        assert (tmp_path / "local" / "a.ipynb").read_text() == notebook("cli")
    finally:
        remote_shell(sshd, f"rm -rf {folder}")


def test_down_makes_the_running_up_do_a_final_sync(
    config: LoadedConfig, sshd: SshServer, folder: str, tmp_path: Path
) -> None:
    fingerprint = asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint()
    up = subprocess.Popen(
        [sys.executable, "-m", "nbterm", "up", "box", "--accept-host-key", fingerprint],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if "box: open http" in line:
                break
        # a save that the watcher may not have seen yet: the final sync must bring it
        remote_shell(
            sshd, f"mkdir -p {folder} && cat > {folder}/last.ipynb", notebook("last words").encode()
        )
        down = subprocess.run(
            [sys.executable, "-m", "nbterm", "down", "box"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        assert "final sync done and tunnel closed" in down.stdout
        out = up.stdout.read()
        assert up.wait(10) == 0, out
        assert "final sync before closing" in out
        assert (tmp_path / "local" / "last.ipynb").read_text() == notebook("last words")
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
        end_process(up)
        remote_shell(sshd, f"rm -rf {folder}")


def test_down_never_signals_a_process_that_is_not_its_nbterm_up(
    config: LoadedConfig,
    paths: Paths,
    trust_sshd: Callable[[str], None],
    sshd: SshServer,
    folder: str,
) -> None:
    """A record left by an `nbterm up` that was killed, whose pid now belongs to another process
    (here a `sleep` of the test's), and a forged record: `down` signals neither, says so, and
    syncs itself, so 'final sync done' is true when it is printed."""
    from nbterm.services.remote import registry

    trust_sshd("box")
    remote_shell(sshd, f"mkdir -p {folder}")
    other = subprocess.Popen(["sleep", "60"])
    try:
        registry.record(paths, "box", 28157, 18888)  # a record of this (pytest) process ...
        path = paths.runtime_dir / "tunnels" / "box.json"
        data = json.loads(path.read_text())
        data["pid"] = other.pid  # ... whose pid was then reused by another process
        path.write_text(json.dumps(data))
        down = subprocess.run(
            [sys.executable, "-m", "nbterm", "down", "box"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert other.poll() is None, "down signalled a process that is not its nbterm up"
        assert "stale tunnel record" in down.stdout, down.stdout + down.stderr
        assert "closed by nbterm up" not in down.stdout
        assert down.returncode == 0, down.stdout + down.stderr
        assert "final sync done" in down.stdout
    finally:
        end_process(other)
        remote_shell(sshd, f"rm -rf {folder}")
