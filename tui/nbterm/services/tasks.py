"""Small asyncio helpers: every wait has a bound."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
    """Cancel ``task`` and wait for it to finish, for at most ``timeout`` seconds."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
        await asyncio.wait_for(asyncio.shield(task), timeout)
