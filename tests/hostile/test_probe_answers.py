"""A hostile remote answers nbterm's Jupyter probes: every malformed answer is a ProbeError
(the health and idle watches go on), never an exception that ends them. The fake Jupyter is a
loopback TCP server, which is what the tunnel hands the probe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from nbterm.services.remote.probe import ProbeError, busy_kernels, get_status

OK = b"HTTP/1.1 200 OK\r\n"


def answer(head: bytes, body: bytes = b"", *, length: bytes | None = None) -> bytes:
    size = str(len(body)).encode() if length is None else length
    return head + b"Content-Length: " + size + b"\r\n\r\n" + body


HOSTILE = {
    "bad content-length": answer(OK, b"{}", length=b"12abc"),
    "negative content-length": answer(OK, b"{}", length=b"-5"),
    "huge content-length": answer(OK, b"{}", length=b"99999999999"),
    "short body": answer(OK, b'{"kernels": 1}', length=b"400"),
    "70 KiB header line": OK + b"X-Junk: " + b"a" * 70_000 + b"\r\n\r\n{}",
    "10,000 headers": OK + b"X: y\r\n" * 10_000 + b"\r\n{}",
    "2 MB body without length": OK + b"\r\n" + b"[" * 2_000_000,
    "a list": answer(OK, b"[1, 2]"),
    "kernels as a list": answer(OK, b'{"kernels": [1], "started": "x", "last_activity": "y"}'),
    "kernels as a huge float": answer(OK, b'{"kernels": 1e400}'),
    "times as objects": answer(OK, b'{"started": {"a": 1}, "kernels": 0}'),
    "deep nesting": answer(OK, b"[" * 100_000),
    "not JSON": answer(OK, b"\xff\xfe"),
    "no status line": b"\r\n\r\n",
    "garbage status": b"SSH-2.0-OpenSSH\r\n\r\n",
}


@pytest.fixture
async def fake_jupyter() -> AsyncIterator[Callable[[bytes], int]]:
    servers: list[asyncio.Server] = []

    async def serve(reply: bytes) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield serve  # type: ignore[misc]
    for server in servers:
        server.close()


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_status_answers(fake_jupyter: Callable[[bytes], object], case: str) -> None:
    port = await fake_jupyter(HOSTILE[case])  # type: ignore[misc]
    with pytest.raises(ProbeError):
        await get_status(port, "token", timeout=5)


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_kernel_answers(fake_jupyter: Callable[[bytes], object], case: str) -> None:
    port = await fake_jupyter(HOSTILE[case])  # type: ignore[misc]
    with pytest.raises(ProbeError):
        await busy_kernels(port, "token", timeout=5)


async def test_a_good_answer_still_reads(fake_jupyter: Callable[[bytes], object]) -> None:
    body = b'{"started": "2026-11-27T10:00:00Z", "last_activity": "2026-11-27T10:05:00Z",'
    body += b' "kernels": 2, "connections": 1}'
    port = await fake_jupyter(answer(OK, body))  # type: ignore[misc]
    status = await get_status(port, "token")
    assert (status.kernels, status.connections) == (2, 1)
    port = await fake_jupyter(answer(OK, b'[{"execution_state": "busy"}, {}]'))  # type: ignore[misc]
    assert await busy_kernels(port, "token") == 1


async def test_an_answer_trickled_one_byte_a_second_times_out_and_never_stalls_the_loop() -> None:
    """A remote that answers the probe one byte a second (a valid answer, if waited for): the
    probe gives up at its bound, and the event loop (the cockpit's) ran on meanwhile."""
    reply = answer(OK, b'{"kernels": 0}')

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            for byte in reply:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticking = asyncio.create_task(tick())
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(ProbeError, match="no answer from Jupyter within 2s"):
            await get_status(port, "token", timeout=2)
    finally:
        ticking.cancel()
        server.close()
    took = asyncio.get_running_loop().time() - started
    assert 1.9 < took < 3.0, f"{took:.1f}s"
    assert ticks >= 30  # 40 ticks in 2 s: the loop was never held
