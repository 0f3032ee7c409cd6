"""The idle guard a test installs on the loopback "remote": its settings in fractions of a minute,
its injected power-off (a marker file), and its end (by pid) whatever the test does."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nbterm.config.model import JupyterSettings
from nbterm.locations import Paths, ensure_private_dir
from nbterm.services.cloud import guard
from nbterm.services.cloud.guard import GUARD_DIR, GuardSettings
from nbterm.services.remote import jupyter
from nbterm.services.remote.jupyter import REMOTE_DIR
from nbterm.services.remote.ssh import Link, run


def settings_for(
    jupyter_settings: JupyterSettings, marker: str, **changes: float | str | None
) -> GuardSettings:
    runtime = jupyter.runtime_dir(jupyter_settings).removeprefix(f"{REMOTE_DIR}/")
    values: dict[str, Any] = {"idle_minutes": 0.05, "grace_minutes": 0.02, "lease_minutes": 0.05,
              "check_seconds": 0.3} | changes  # fmt: skip
    return GuardSettings(
        runtime=runtime,
        power_off=f'echo "powered off $(date +%s.%N)" >> "$HOME"/{marker}',
        **values,
    )


async def powered_off(link: Link, marker: str) -> bool:
    status, out, _err = await run(link, f"cat {marker} 2>/dev/null")
    return status == 0 and "powered off" in out


async def guard_pid(link: Link) -> int | None:
    _status, out, _err = await run(link, f"cat {GUARD_DIR}/state.json 2>/dev/null")
    try:
        return int(json.loads(out)["pid"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


@contextlib.asynccontextmanager
async def guarded(link: Link, marker: str) -> AsyncIterator[None]:
    """Whatever the test does, the guard it started ends (by its pid) and its files go."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await guard.turn_off(link)
        pid = await guard_pid(link)
        deadline = time.monotonic() + 5
        while pid is not None and time.monotonic() < deadline:
            status, _o, _e = await run(link, f"kill -0 {pid} 2>/dev/null")
            if status != 0:
                break
            await asyncio.sleep(0.1)
        else:
            if pid is not None:
                await run(link, f"kill {pid} 2>/dev/null; true")
        await run(link, f"rm -rf {GUARD_DIR} {marker}; true")


def another_laptop(paths: Paths, base: Path, name: str) -> Paths:
    """Another laptop's nbterm: a state folder of its own, with its id and ``name``."""
    state = ensure_private_dir(base / f"{name}-state")
    (state / "laptop.json").write_text(json.dumps({"id": uuid.uuid4().hex[:16], "name": name}))
    (state / "laptop.json").chmod(0o600)
    return dataclasses.replace(paths, state_dir=state)


async def never_powered_off(link: Link, marker: str, seconds: float, what: str = "busy") -> int:
    """Samples taken every 0.1 s over ``seconds``, each asserting no power-off."""
    samples, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        assert not await powered_off(link, marker), (
            f"powered off {time.monotonic() - started:.1f}s into a {what} window"
        )
        samples += 1
        await asyncio.sleep(0.1)
    return samples


async def powered_off_within(link: Link, marker: str, seconds: float) -> float:
    """How long it took to power off (asserting it did within ``seconds``)."""
    started = time.monotonic()
    while not await powered_off(link, marker):
        assert time.monotonic() - started < seconds, "never powered off once idle"
        await asyncio.sleep(0.1)
    return time.monotonic() - started
