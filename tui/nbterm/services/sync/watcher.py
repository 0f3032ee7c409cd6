"""Notice remote changes within about a second, over the host's existing asyncssh connection.

One long-running remote command per connection reports changes, so nbterm itself does nothing
while nothing changes: ``inotifywait`` where the remote has it, otherwise a small shell loop that
prints a digest of the file listing whenever it differs (checked twice a second on the remote).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from nbterm.services.remote.shell import WATCH_ENDED, shell_path, until_disconnected
from nbterm.services.remote.ssh import Link, run

WatchMode = Literal["auto", "inotify", "poll"]
POLL_SECONDS = 0.5


async def _lines(stream: object) -> AsyncIterator[str]:
    async for line in stream:  # type: ignore[attr-defined]
        yield str(line)


def poll_command(remote: str) -> str:
    folder = shell_path(remote)
    listing = (
        f"find {folder} -name .ipynb_checkpoints -prune -o -type f ! -name '.~*' "
        "-printf '%T@ %s %P\\n' 2>/dev/null | md5sum"
    )
    return until_disconnected(
        f"p=; while :; do d=$({listing}); "
        f'if [ "$d" != "$p" ]; then echo "$d"; p=$d; fi; sleep {POLL_SECONDS}; done'
    )


def inotify_command(remote: str) -> str:
    return until_disconnected(
        "exec inotifywait -m -r -e close_write,moved_to,delete,create "
        r"--exclude '(/\.~[^/]*$|/\.ipynb_checkpoints/)' --format '%w%f' "
        f"{shell_path(remote)}"
    )


class RemoteWatcher:
    """Calls ``on_change`` when files under ``remote`` change; survives reconnects."""

    def __init__(
        self,
        get_link: Callable[[], Awaitable[Link]],
        remote: str,
        on_change: Callable[[], None],
        *,
        mode: WatchMode = "auto",
    ) -> None:
        self.get_link = get_link
        self.remote = remote
        self.on_change = on_change
        self.mode = mode
        self.using: str | None = None
        self.last_error: str | None = None

    async def _pick(self, link: Link) -> str:
        if self.mode != "auto":
            return self.mode
        status, _out, _err = await run(
            link, f"command -v inotifywait >/dev/null && test -d {shell_path(self.remote)}"
        )
        return "inotify" if status == 0 else "poll"

    async def run(self) -> None:
        while True:
            try:
                link = await self.get_link()
                self.using = await self._pick(link)
                command = (
                    inotify_command(self.remote)
                    if self.using == "inotify"
                    else poll_command(self.remote)
                )
                await self._follow(link, command)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the link dropped; wait for the next one
                self.last_error = str(exc)
            await asyncio.sleep(1.0)

    async def _when_established(self, process: object) -> None:
        """inotifywait says "Watches established." on stderr once it is watching."""
        async for line in _lines(process.stderr):  # type: ignore[attr-defined]
            if "Watches established" in line:
                self.on_change()
            elif line.strip() and not line.startswith("Setting up watches"):
                self.last_error = line.strip()  # e.g. "Couldn't watch ...: No such file"

    async def _follow(self, link: Link, command: str) -> None:
        """Report every change; and once when the watch is in place, since a save made while it
        was being set up (after the last sync looked) would otherwise wait for the timer."""
        process = await link.conn.create_process(command)
        ready = asyncio.create_task(self._when_established(process))
        try:
            async for line in process.stdout:
                if str(line).startswith(WATCH_ENDED):
                    return  # e.g. the folder is not there (yet): look again
                self.on_change()  # in poll mode the first line is the first look: also "ready"
        finally:
            ready.cancel()
            with contextlib.suppress(Exception):
                process.terminate()
            process.close()
