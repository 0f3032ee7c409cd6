"""One nbterm process at a time in a rule's staging mirror and record.

The cockpit, a ``sync --watch`` and a one-shot ``nbterm sync`` may all run one rule. Each cycle
holds an exclusive ``flock`` on a file beside the rule's mirror (Linux and macOS both have it;
the kernel lets go when the process ends, even by SIGKILL, so a lock is never left stale). The
file names who holds it, for the words of the process that waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import sys
import time
from pathlib import Path

POLL = 0.1


def this_face() -> str:
    """How a person would name this process: "nbterm up", "nbterm sync", "the cockpit"."""
    # the first word that looks like a command (not an option, nor an option's path or name)
    args = sys.argv[1:]
    words = [
        arg
        for index, arg in enumerate(args)
        if re.fullmatch(r"[a-z][a-z-]*", arg) and (index == 0 or args[index - 1] != "--config")
    ][:1]
    return f"nbterm {words[0]}" if words else "the cockpit"


class RuleLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it (this one may take it once)."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {this_face()}\n".encode())
        self._fd = fd
        return True

    async def acquire(self, wait: float) -> bool:
        """Take the lock, waiting up to ``wait`` seconds for another process to let it go."""
        deadline = time.monotonic() + wait
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> str:
        """Who holds it, as the holder wrote it ("pid 4242, nbterm up"), or "another nbterm"."""
        try:
            text = self.path.read_text(errors="replace")[:200].strip()
        except OSError:
            return "another nbterm"
        pid, _, face = text.partition(" ")
        return f"pid {pid}, {face}" if pid.isdigit() and face else "another nbterm"
