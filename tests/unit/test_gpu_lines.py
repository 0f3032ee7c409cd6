"""What a host's nvidia-smi stream sends is the remote's data: read in bounded lines, grouped
by the pause between samples, a line that is not nvidia-smi's left out (services/remote/gpu.py)."""

from __future__ import annotations

import asyncio

from nbterm.services.remote import gpu


class Reader:
    """An asyncssh-like reader: chunks with pauses between them, then the end."""

    def __init__(self, *parts: bytes | float) -> None:
        self.parts = list(parts)

    async def read(self, _size: int) -> bytes:
        while self.parts:
            part = self.parts.pop(0)
            if isinstance(part, float):
                await asyncio.sleep(part)
                continue
            return part
        return b""


async def test_samples_are_grouped_by_the_pause_between_them() -> None:
    groups: list[list[bytes]] = []
    reader = Reader(b"0, 1, 2, 100\n1, 5", b"0, 3, 100\n", 0.5, b"0, 9, 2, 100\n1, 9, 3, 100\n")
    await gpu._lines(reader, groups.append)
    assert [len(group) for group in groups] == [2, 2]
    assert [card.util for card in gpu._cards(groups[1])] == [9, 9]


async def test_an_endless_line_and_junk_are_dropped_memory_bounded() -> None:
    groups: list[list[bytes]] = []
    flood = [b"9" * 4096] * 200  # 800 kB with no newline
    reader = Reader(*flood, b"\n0, 50, 1, 100\n\x1b]52;c;aGk=\x07, 1, 1\n")
    await gpu._lines(reader, groups.append)
    lines = [line for group in groups for line in group]
    assert all(len(line) <= gpu.LINE_LIMIT for line in lines)
    assert [c.util for c in gpu._cards(lines)] == [50]  # the escape line does not parse
