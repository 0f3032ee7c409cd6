"""The journal: what nbterm said about every host, kept after the screen is gone.

A person who comes back in the morning asks why an instance stopped at 3 am (the guard, the
budget, another laptop, a spot interruption) and what was synced when; a toast has left, the
Sync log was cleared by a quit. Every line the cockpit's Sync log shows and every line headless
``up`` prints is appended here, with its host and time, and so is what the idle guard on the
instance decided while no nbterm was attached (read from its state at the next attach, each
decision at its own time, each once). ``nbterm log [HOST] [--since 2h]`` prints it; the cockpit's
Sync log opens with its last lines.

One JSON object per line in ``STATE/journal.jsonl`` (0600, in nbterm's 0700 state folder),
rotated at ``LIMIT`` bytes to ``journal.1.jsonl`` (one old file kept), appended under a lock so
that two nbterms on one laptop never interleave a line. Text from the remote is kept as data and
made safe where it is shown; a line that does not parse is skipped when read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from nbterm.files import write_private
from nbterm.locations import Paths, UnsafeDirectoryError, ensure_private_dir

LIMIT = 1 << 20
"""Bytes before the journal is rotated (about 5,000 lines)."""
TEXT_LIMIT = 1000


@dataclass(frozen=True)
class Entry:
    at: float
    host: str
    text: str


class Journal:
    def __init__(self, paths: Paths) -> None:
        self.folder = paths.state_dir
        self.path = self.folder / "journal.jsonl"
        self.old = self.folder / "journal.1.jsonl"
        self._seen_file = self.folder / "journal-guard.json"
        self._lock = threading.Lock()

    def append(self, host: str, text: str, at: float | None = None) -> None:
        """One line; never raises (a journal that cannot be written must not stop the work)."""
        line = json.dumps({"at": time.time() if at is None else at, "host": host[:64],
                           "text": text[:TEXT_LIMIT]}) + "\n"  # fmt: skip
        with self._lock, contextlib.suppress(OSError, UnsafeDirectoryError):
            ensure_private_dir(self.folder)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size + len(line) > LIMIT:
                    os.replace(self.path, self.old)  # the next append starts a new file
                    os.close(fd)
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line.encode("utf-8", errors="surrogateescape"))
            finally:
                os.close(fd)

    def entries(self, host: str | None = None, since: float | None = None) -> list[Entry]:
        """Every entry kept, oldest first (by their time), of ``host`` and since ``since``."""
        found = [
            entry for entry in self._read()
            if (host is None or entry.host == host) and (since is None or entry.at >= since)
        ]  # fmt: skip
        return sorted(found, key=lambda entry: entry.at)

    def _read(self) -> Iterator[Entry]:
        for path in (self.old, self.path):
            try:
                data = path.read_bytes()[: 2 * LIMIT]
            except OSError:
                continue
            for raw in data.decode("utf-8", errors="surrogateescape").splitlines():
                try:
                    item = json.loads(raw)
                    yield Entry(float(item["at"]), str(item["host"])[:64],
                                str(item["text"])[:TEXT_LIMIT])  # fmt: skip
                except (ValueError, KeyError, TypeError, RecursionError):
                    continue

    def guard_seen(self, host: str) -> float:
        """The time of the last of the guard's decisions already in the journal for ``host``."""
        try:
            value = json.loads(self._seen_file.read_text()).get(host, 0.0)
        except (OSError, ValueError, AttributeError):
            return 0.0
        return float(value) if isinstance(value, (int, float)) else 0.0

    def guard_decided(self, host: str, at: float, text: str) -> bool:
        """Record one of the guard's decisions once (False: it was recorded before)."""
        with self._lock:
            if at <= self.guard_seen(host):
                return False
            try:
                seen = json.loads(self._seen_file.read_text())
            except (OSError, ValueError):
                seen = {}
            seen = seen if isinstance(seen, dict) else {}
            seen[host] = at
            with contextlib.suppress(OSError, UnsafeDirectoryError):
                ensure_private_dir(self.folder)
                write_private(self._seen_file, json.dumps(seen))
        self.append(host, text, at)
        return True


def host_of(text: str, hosts: set[str]) -> str:
    """The host a line of the Sync log is about ("gpu: ...", "gpu:~/notebooks/: ..."), or ""."""
    name = text.partition(":")[0]
    return name if name in hosts else ""
