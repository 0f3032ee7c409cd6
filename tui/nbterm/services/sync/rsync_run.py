"""One rsync run: the subprocess, its stdout parsed as it streams, and its clean end.

Progress is handed on as it comes (at most every PROGRESS_EVERY seconds); itemized lines,
deletions and files left out for ``--max-size`` are collected. A cancelled run (Ctrl-C, a
closing host) stops rsync: SIGTERM, then SIGKILL after 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nbterm.services.sync.rsync_output import (
    Item,
    ProgressLine,
    Skipped,
    parse_line,
    split_segments,
)

PROGRESS_EVERY = 0.1


@dataclass
class RsyncRun:
    code: int = 0
    stderr: str = ""
    received: list[Item] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)
    """Files rsync left out because of ``--max-size``."""
    listed: list[str] = field(default_factory=list)
    """Every file rsync itemized, sent or not (all of them with ``--info=name2``)."""


async def run_rsync(command: list[str], on_progress: Callable[[ProgressLine], None]) -> RsyncRun:
    run = RsyncRun()
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        run.code, run.stderr = 127, "rsync is not installed on this machine"
        return run
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr_task = asyncio.create_task(proc.stderr.read())
    buffer = b""
    last_progress = 0.0
    try:
        while chunk := await proc.stdout.read(65536):
            segments, buffer = split_segments(buffer + chunk)
            for segment in segments:
                parsed = parse_line(segment)
                if isinstance(parsed, Item):
                    if parsed.is_file and not parsed.deleted:
                        run.listed.append(parsed.path)
                    if parsed.received:
                        run.received.append(parsed)
                    elif parsed.deleted:
                        run.deleted.append(parsed.path)
                elif isinstance(parsed, Skipped):
                    run.oversized.append(parsed.path)
                elif isinstance(parsed, ProgressLine):
                    now = time.monotonic()
                    if now - last_progress >= PROGRESS_EVERY:
                        last_progress = now
                        on_progress(parsed)
        run.code = await proc.wait()
        run.stderr = (await stderr_task).decode(errors="replace")
        return run
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        stderr_task.cancel()
