"""The two doors remote data comes in by: ``untrusted_json.load`` (size, depth, never raises)
and ``output.lines``/``read_capped`` (bytes, bounded, decoded with surrogateescape)."""

from __future__ import annotations

import asyncio

import pytest

from nbterm.safe_text import shown
from nbterm.services.cloud import guard
from nbterm.services.cloud.spot import parse_notice
from nbterm.services.remote.jupyter import parse_runtime_files
from nbterm.services.remote.output import lines, read_capped, remote_text
from nbterm.untrusted_json import Unusable, load, load_object, size_words


def bomb(levels: int, opener: str = "[") -> str:
    if opener == "{":
        return '{"a":' * levels + "1" + "}" * levels
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("opener", ["[", "{"])
@pytest.mark.parametrize("levels", [65, 5_000, 100_000])
def test_a_depth_bomb_is_unusable_never_an_exception(opener: str, levels: int) -> None:
    value = load(bomb(levels, opener), "the guard's state")
    assert value == Unusable("the guard's state", "it nests deeper than 64 levels")
    assert str(value) == "the guard's state is not usable: it nests deeper than 64 levels"


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert load('{"a": "' + "[" * 10_000 + '"}', "x") == {"a": "[" * 10_000}
    assert isinstance(load(bomb(64), "x"), list)  # 64 levels are allowed
    assert load('{"q": "\\"[[["}', "x") == {"q": '"[[['}


def test_size_and_shape_and_syntax_are_said() -> None:
    assert load("1" * 2000, "a notice", limit=1000) == Unusable("a notice", "it is over 1000 bytes")
    assert str(load("{", "a runtime file")).startswith(
        "a runtime file is not usable: it is not JSON"
    )
    assert load_object("[1]", "x") == Unusable("x", "it is a JSON list, not an object")
    assert load_object(b'{"root_dir": "/caf\xe9"}', "x") == {"root_dir": "/caf\udce9"}


def test_every_reader_of_remote_json_survives_a_bomb() -> None:
    deep = bomb(100_000)
    assert parse_runtime_files(f"\x1e/x/jpserver-1.json\n{deep}") == []
    assert parse_notice(deep) is None
    state = guard.parse_state(deep, deep, user_off=False, alive=True)
    assert (state.armed, state.running, state.idle_minutes) == (False, False, None)


class Reader:
    """An asyncssh reader opened with ``encoding=None``: bytes in chunks, then b""."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def read(self, _n: int) -> bytes:
        await asyncio.sleep(0)
        return self.chunks.pop(0) if self.chunks else b""


async def collect(reader: Reader, limit: int) -> list[str]:
    return [line async for line in lines(reader, limit)]


async def test_lines_are_cut_at_their_bound_however_the_bytes_arrive() -> None:
    assert await collect(Reader(b"one\r\ntw", b"o\nthree"), 10) == ["one", "two", "three"]
    long = b"x" * 25
    assert await collect(Reader(long + b"\nok\n"), 10) == ["x" * 10 + "...", "ok"]
    assert await collect(Reader(b"x" * 8, b"x" * 8, b"x" * 8, b"\nok"), 10) == [
        "x" * 10 + "...",
        "ok",
    ]
    assert await collect(Reader(b"caf\xe9\n"), 10) == ["caf\udce9"]
    assert shown(remote_text(b"caf\xe9")) == "caf\\xe9"


async def test_read_capped_stops_or_drains_past_its_limit() -> None:
    chunks = [b"a" * 100] * 50
    stopped = Reader(*chunks)
    capped = await read_capped(stopped, 250)
    assert (len(capped.data), capped.over) == (250, True)
    assert len(stopped.chunks) == 47  # it stopped reading
    drained = Reader(*chunks)
    capped = await read_capped(drained, 250, drain=True)
    assert (len(capped.data), capped.over, drained.chunks) == (250, True, [])
    assert (await read_capped(Reader(b"ab", b"c"), 3)).over is False
    assert [size_words(n) for n in (1 << 20, 65536, 1000)] == ["1 MiB", "64 KiB", "1000 bytes"]
