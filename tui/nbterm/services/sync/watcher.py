"""Notice remote changes within about a second, over the host's existing asyncssh connection.

One long-running remote command per connection reports changes, so nbterm itself does nothing
while nothing changes: ``inotifywait`` where the remote has it, otherwise a small shell loop that
compares the file listing twice a second on the remote and prints what changed.

Each report names the file that was written (``on_path``): rsync's quick check cannot see a
rewrite with the same size and modification time, so the engine compares those files by content.
The listing holds each file's ctime, which no one can set back: such a rewrite changes it.
The watch watches itself: the folder deleted, moved or replaced ends it, and it starts again.
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


PATH_MARK = "= "
"""A line that names a file written since the last look (relative to the watched folder)."""
MAX_LINE = 4096
"""Longer lines from the remote are cut: a name is at most a few hundred bytes."""


def poll_command(remote: str) -> str:
    """Every POLL_SECONDS, the listing (ctime, mtime, size, name) compared with the last one:
    a line per file that changed (after the first look), then ``changed``."""
    folder = shell_path(remote)
    listing = (
        f"find {folder} -name .ipynb_checkpoints -prune -o -type f ! -name '.~*' "
        "-printf '%C@ %T@ %s %P\\n' 2>/dev/null | LC_ALL=C sort"
    )
    return until_disconnected(
        't=$(mktemp -d) || exit 1; trap \'rm -rf "$t"; exit 0\' TERM; : > "$t/o"; f=1; '
        "while :; do "
        f'{listing} > "$t/n"; '
        'if ! cmp -s "$t/n" "$t/o"; then '
        f'[ -z "$f" ] && LC_ALL=C comm -13 "$t/o" "$t/n" | cut -d\' \' -f4- | '
        f"sed 's/^/{PATH_MARK}/'; "
        'echo changed; f=; mv "$t/n" "$t/o"; fi; '
        f'[ -d {folder} ] || {{ rm -rf "$t"; exit 0; }}; sleep {POLL_SECONDS}; done'
    )


ROOT_MARK = "nbterm:root "


def inotify_command(remote: str) -> str:
    """The folder by its absolute path, said first (names are reported under it); from ``/``,
    since a watch whose own working folder is the one deleted never hears ``DELETE_SELF``
    (the folder lives on while a process stands in it)."""
    return until_disconnected(
        f"d=$(cd {shell_path(remote)} && pwd -P) && cd / && printf '{ROOT_MARK}%s/\\n' \"$d\" "
        "&& exec inotifywait -m -r -e close_write,moved_to,delete,create,delete_self,move_self "
        r"--exclude '(/\.~[^/]*$|/\.ipynb_checkpoints/)' --format '%e %w%f' " + '"$d/"'
    )


def written(line: str, root: str) -> str | None:
    """The name (relative to ``root``) of a file written, from one inotify line (None: not a
    write, or not under the folder)."""
    events, _, path = line.partition(" ")
    if not ("CLOSE_WRITE" in events or "MOVED_TO" in events) or "ISDIR" in events:
        return None
    if not root or not path.startswith(root):
        return None
    return path[len(root) :] or None


def is_self_gone(line: str, root: str) -> bool:
    """The watched folder itself was deleted or moved away (the watch is dead from now on)."""
    events, _, path = line.partition(" ")
    return bool(root) and path == root and ("DELETE_SELF" in events or "MOVE_SELF" in events)


class RemoteWatcher:
    """Calls ``on_change`` when files under ``remote`` change; survives reconnects."""

    def __init__(
        self,
        get_link: Callable[[], Awaitable[Link]],
        remote: str,
        on_change: Callable[[], None],
        *,
        mode: WatchMode = "auto",
        on_path: Callable[[str], None] | None = None,
    ) -> None:
        """``on_path``: told the name of each file written (the engine compares those by
        content, since their size and time may be unchanged)."""
        self.get_link = get_link
        self.remote = remote
        self.on_change = on_change
        self.on_path = on_path
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
        process = await link.conn.create_process(
            command, encoding="utf-8", errors="surrogateescape"
        )  # a name that is not UTF-8 is data, never an error that ends the connection
        ready = asyncio.create_task(self._when_established(process))
        inotify = self.using == "inotify"
        root = ""
        try:
            async for raw in process.stdout:
                line = str(raw)[:MAX_LINE].rstrip("\n")
                if line.startswith(WATCH_ENDED):
                    return  # e.g. the folder is not there (yet): look again
                if inotify and line.startswith(ROOT_MARK) and not root:
                    root = line.removeprefix(ROOT_MARK)
                    continue
                if inotify and is_self_gone(line, root):
                    self.on_change()  # the folder went: what was in it is looked at again
                    return  # ... and the watch starts again on whatever replaces it
                path = written(line, root) if inotify else line.removeprefix(PATH_MARK)
                if path is not None and (inotify or line.startswith(PATH_MARK)):
                    if self.on_path is not None:
                        self.on_path(path)
                    if not inotify:
                        continue  # the "changed" line that follows asks for the cycle
                self.on_change()  # in poll mode the first line is the first look: also "ready"
        finally:
            ready.cancel()
            with contextlib.suppress(Exception):
                process.terminate()
            process.close()
