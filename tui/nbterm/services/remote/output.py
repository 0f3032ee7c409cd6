"""What a remote command prints, read as data: bytes, bounded, decoded only to be shown.

The remote is untrusted (DESIGN.md, "Trust boundaries"). Its output is read as bytes, never more
than a limit chosen for its purpose (a runtime file, a state file, a log tail), and decoded with
``surrogateescape``: a byte that is not UTF-8 stays a byte (``safe_text.shown`` writes it as
``\\xNN``) and can never end the connection the way a strict decoder inside asyncssh does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nbterm.safe_text import shown

OUTPUT_LIMIT = 1 << 20
"""What one remote command may answer on stdout unless its caller says less (1 MiB: a listing of
runtime files, a state file, a probe's answer are all far smaller)."""
ERROR_LIMIT = 64 << 10
"""What is kept of a command's stderr (the rest is read and dropped, so the command never blocks
on a full pipe)."""
LINE_LIMIT = 4096
"""The longest line kept of output streamed line by line (pip's progress, a watch loop)."""
_CHUNK = 1 << 16


def remote_text(data: bytes) -> str:
    """Remote bytes as text that keeps every byte: what is not UTF-8 becomes a lone surrogate,
    which ``safe_text.shown`` turns into ``\\xNN``."""
    return data.decode("utf-8", errors="surrogateescape")


async def keep_tail(stream: asyncio.StreamReader, tail: bytearray, limit: int) -> None:
    """Read a local process's stream (a proxy command's, ssh's stderr) to its end, keeping only
    its last ``limit`` bytes in ``tail``."""
    while chunk := await stream.read(_CHUNK):
        tail += chunk
        del tail[:-limit]


def last_lines(data: bytes, count: int = 3) -> str:
    """The last ``count`` non-empty lines of ``data`` as one line that cannot steer a terminal
    ("" if none)."""
    lines = [line.strip() for line in remote_text(data).splitlines()]
    return shown(" | ".join([line for line in lines if line][-count:]))


@dataclass(frozen=True)
class Capped:
    """What was kept of a stream, and whether the remote sent more than that."""

    data: bytes
    over: bool


async def read_capped(reader: Any, limit: int, *, drain: bool = False) -> Capped:
    """Read ``reader`` (an asyncssh reader opened with ``encoding=None``) to its end, keeping at
    most ``limit`` bytes. Past the limit it stops reading, or with ``drain`` reads on and drops
    what comes (memory stays bounded either way)."""
    chunks: list[bytes] = []
    kept = 0
    over = False
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            return Capped(b"".join(chunks), over)
        if over:
            continue  # draining: read, never kept
        room = limit - kept
        if len(chunk) > room:
            chunks.append(chunk[:room])
            kept = limit
            over = True
            if not drain:
                return Capped(b"".join(chunks), True)
            continue
        chunks.append(chunk)
        kept += len(chunk)


async def lines(reader: Any, limit: int = LINE_LIMIT) -> AsyncIterator[str]:
    """The lines of ``reader`` (bytes), each cut to ``limit`` bytes (a cut line ends in "..."),
    without their line ends; memory stays bounded by ``limit`` whatever the remote sends."""
    buffer = b""
    skipping = False  # inside the rest of a line already cut
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            break
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line, buffer = buffer[:end], buffer[end + 1 :]
            if skipping:
                skipping = False
                continue
            yield _cut(line.rstrip(b"\r"), limit)
        if len(buffer) > limit:
            if not skipping:
                yield _cut(buffer, limit)
            skipping = True
            buffer = b""
    if buffer and not skipping:
        yield _cut(buffer.rstrip(b"\r"), limit)


def _cut(line: bytes, limit: int) -> str:
    return remote_text(line) if len(line) <= limit else remote_text(line[:limit]) + "..."
