"""Small asyncio helpers: every wait has a bound, and no task dies without a word."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
    """Cancel ``task`` and wait for it to finish, for at most ``timeout`` seconds."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
        await asyncio.wait_for(asyncio.shield(task), timeout)


async def supervise(
    name: str,
    work: Callable[[], Awaitable[None]],
    say: Callable[[str], None],
    *,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
) -> None:
    """Run ``work()`` until it returns; if it raises, say so and start it again, backing off.

    A task that dies quietly (its exception kept by a ``gather(..., return_exceptions=True)``)
    would leave the user believing it still runs: here the death is said (one line, through
    ``say``) and the work goes on. Cancellation ends it.
    """
    delay = first_delay
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, then restarted
            say(f"{name} ended by an error ({exc!r}); restarting it in {delay:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
