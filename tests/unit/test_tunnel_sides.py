"""One forwarded connection's failure ends that connection only, never the SSH link.

The condition a closing browser tab made (issue: a closed tab cut every other connection): the
browser resets its socket, and before the event loop has seen the reset, the remote side's EOF
arrives and the tunnel half-closes the local socket: ``write_eof()`` raises ENOTCONN inside an
asyncssh callback, and asyncssh closes the whole connection. Here the reset is real (a loopback
TCP socket closed with SO_LINGER 0); the SSH channel is a stand-in that records what it is told.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from nbterm.services.remote.tunnel import _ChannelSide, _LocalSide


class FakeChannel:
    def __init__(self) -> None:
        self.closed = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        if self.closed:
            raise BrokenPipeError("channel closed")
        self.written.append(data)

    def write_eof(self) -> None:
        if self.closed:
            raise BrokenPipeError("channel closed")

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        if self.closed:
            raise RuntimeError("pause after close")

    def resume_reading(self) -> None:
        if self.closed:
            raise RuntimeError("resume after close")


class FakeTunnel:
    def __init__(self) -> None:
        self.active: set[Any] = set()


async def _reset_by_peer() -> tuple[_LocalSide, asyncio.Server]:
    """A _LocalSide whose browser socket was reset, before the loop has noticed."""
    made: asyncio.Future[_LocalSide] = asyncio.get_running_loop().create_future()
    tunnel = FakeTunnel()

    class Side(_LocalSide):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            tunnel.active.add(self)
            made.set_result(self)

    server = await asyncio.get_running_loop().create_server(
        lambda: Side(tunnel),  # type: ignore[arg-type]
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    browser = socket.create_connection(("127.0.0.1", port))
    side = await made
    side.channel = FakeChannel()
    browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    browser.close()  # RST: the kernel knows at once, the event loop not yet
    return side, server


async def test_eof_from_the_remote_after_the_browser_reset_its_socket() -> None:
    side, server = await _reset_by_peer()
    try:
        assert side.transport is not None and not side.transport.is_closing()
        channel_side = _ChannelSide(side)
        channel_side.eof_received()  # raised OSError ENOTCONN into asyncssh before the fix
        assert side.channel is None  # this forwarded connection ended ...
        assert side.transport.is_closing()
    finally:
        server.close()


@pytest.mark.parametrize("callback", ["data_received", "eof_received", "pause_writing",
                                      "resume_writing", "connection_lost"])  # fmt: skip
async def test_no_callback_of_the_local_side_raises_after_the_channel_closed(
    callback: str,
) -> None:
    side, server = await _reset_by_peer()
    try:
        assert isinstance(side.channel, FakeChannel)
        side.channel.closed = True  # the remote end went away first
        args: tuple[Any, ...] = (b"data",) if callback == "data_received" else ()
        if callback == "connection_lost":
            args = (None,)
        getattr(side, callback)(*args)  # must not raise
    finally:
        server.close()


@pytest.mark.parametrize("callback", ["data_received", "pause_writing", "resume_writing"])
async def test_no_callback_of_the_channel_side_raises_on_a_broken_socket(callback: str) -> None:
    side, server = await _reset_by_peer()
    try:
        assert side.transport is not None
        broken = side.transport

        class Broken:
            def __getattr__(self, name: str) -> Any:
                if name in ("is_closing", "can_write_eof"):
                    return lambda: name != "is_closing"

                def fail(*_args: Any) -> None:
                    raise OSError(107, "Transport endpoint is not connected")

                return fail if name != "abort" else broken.abort

        side.transport = Broken()  # type: ignore[assignment]
        args: tuple[Any, ...] = (b"x", None) if callback == "data_received" else ()
        getattr(_ChannelSide(side), callback)(*args)  # must not raise
        assert side.channel is None
    finally:
        server.close()
