"""A local forward to the remote Jupyter that survives reconnects.

nbterm owns the listening socket on 127.0.0.1 and opens one SSH ``direct-tcpip`` channel per
accepted connection over whichever SSH connection is current. The port is never released during a
reconnect: a browser request made meanwhile waits (up to a bound) instead of being refused, and
open tabs recover by themselves. Bytes are moved by protocol callbacks with flow control both
ways, not by Python-level read/write loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

import asyncssh

from nbterm.services.remote.connection import HostConnection

LOCAL_HOST = "127.0.0.1"  # never another interface: Jupyter's token is the only lock on the door
PORT_SEARCH = 100
_R = TypeVar("_R")


class PortUnavailableError(Exception):
    pass


def _guarded(method: Callable[..., _R]) -> Callable[..., _R]:
    """A callback of one forwarded connection that can fail on its own sockets (a browser tab
    that reset its socket: ENOTCONN on ``write_eof``, EPIPE on ``write``, a pause after close)
    without the error reaching asyncssh, which would close the whole SSH connection and every
    other tab with it. The failure ends this forwarded connection only."""

    @functools.wraps(method)
    def run(self: _Side, *args: Any) -> _R:
        try:
            return method(self, *args)
        except Exception:  # noqa: BLE001 - any errno, any callback: this connection only
            self.abort()
            return cast("_R", None)  # (eof_received: falsy, the transport closes itself)

    return run


class _Side:
    def abort(self) -> None:
        raise NotImplementedError


class _ChannelSide(_Side, asyncssh.SSHTCPSession[bytes]):
    def __init__(self, local: _LocalSide) -> None:
        self.local = local

    def abort(self) -> None:
        self.local.abort()

    @_guarded
    def data_received(self, data: bytes, datatype: Any) -> None:
        transport = self.local.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    @_guarded
    def eof_received(self) -> bool:
        transport = self.local.transport
        if transport is not None and transport.can_write_eof() and not transport.is_closing():
            transport.write_eof()
        return True

    @_guarded
    def connection_lost(self, exc: Exception | None) -> None:
        if self.local.transport is not None:
            self.local.transport.close()

    @_guarded
    def pause_writing(self) -> None:
        if self.local.transport is not None and not self.local.transport.is_closing():
            self.local.transport.pause_reading()

    @_guarded
    def resume_writing(self) -> None:
        if self.local.transport is not None and not self.local.transport.is_closing():
            self.local.transport.resume_reading()


class _LocalSide(_Side, asyncio.Protocol):
    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.channel: Any = None
        self.pending: list[bytes] = []
        self.pending_eof = False
        self.task: asyncio.Task[None] | None = None

    def abort(self) -> None:
        """End this forwarded connection at once, both sides; never raises."""
        self.tunnel.active.discard(self)
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.abort() if hasattr(channel, "abort") else channel.close()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.abort()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # (create_server's: a stream)
        self.tunnel.active.add(self)
        self.task = asyncio.get_running_loop().create_task(self._attach())

    async def _attach(self) -> None:
        assert self.transport is not None
        try:
            link = await self.tunnel.connection.get(self.tunnel.wait_for_link)
            channel, _session = await link.conn.create_connection(
                lambda: _ChannelSide(self),
                LOCAL_HOST,
                self.tunnel.remote_port,
                window=self.tunnel.window,
                max_pktsize=self.tunnel.max_pktsize,
            )
        except Exception:  # noqa: BLE001 - no link within the bound, or the remote refused
            self.transport.close()
            return
        if self.transport.is_closing():
            channel.close()
            return
        self.channel = channel
        try:
            for data in self.pending:
                channel.write(data)
            self.pending.clear()
            if self.pending_eof:
                channel.write_eof()
        except Exception:  # noqa: BLE001 - the channel closed meanwhile: this connection only
            self.abort()

    @_guarded
    def data_received(self, data: bytes) -> None:
        if self.channel is not None:
            self.channel.write(data)
        else:
            self.pending.append(data)

    @_guarded
    def eof_received(self) -> bool:
        if self.channel is not None:
            self.channel.write_eof()
        else:
            self.pending_eof = True
        return True

    @_guarded
    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.active.discard(self)
        if self.channel is not None:
            self.channel.close()
        elif self.task is not None:
            self.task.cancel()

    @_guarded
    def pause_writing(self) -> None:
        if self.channel is not None:
            self.channel.pause_reading()

    @_guarded
    def resume_writing(self) -> None:
        if self.channel is not None:
            self.channel.resume_reading()


def listen_local(wanted_port: int) -> socket.socket:
    """A listening socket on 127.0.0.1: the wanted port, or the next free one of PORT_SEARCH."""
    last: OSError | None = None
    for port in range(wanted_port, min(wanted_port + PORT_SEARCH, 65536)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (past TIME_WAIT only)
            sock.bind((LOCAL_HOST, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            last = exc
            continue
        sock.setblocking(False)
        return sock
    raise PortUnavailableError(
        f"no free local port in {wanted_port}-{wanted_port + PORT_SEARCH - 1}: {last}"
    )


class Tunnel:
    """Listens on 127.0.0.1 and forwards every connection to ``remote_port`` on the remote."""

    def __init__(
        self,
        connection: HostConnection,
        remote_port: int,
        wanted_port: int,
        *,
        wait_for_link: float = 15.0,
        window: int = 2 * 1024 * 1024,
        max_pktsize: int = 32768,
        sock: socket.socket | None = None,
    ) -> None:
        self.connection = connection
        self.remote_port = remote_port
        self.wanted_port = wanted_port
        self.wait_for_link = wait_for_link
        self.window = window
        self.max_pktsize = max_pktsize
        self.sock = sock
        """A listening socket made by :func:`listen_local` elsewhere (the forwarder's parent)."""
        self.local_port = 0
        self.active: set[_LocalSide] = set()
        self._server: asyncio.Server | None = None

    async def open(self) -> int:
        """Bind the wanted port, or the next free one (or serve ``sock``); return the port."""
        sock = self.sock if self.sock is not None else listen_local(self.wanted_port)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _LocalSide(self), sock=sock
        )
        self.local_port = int(sock.getsockname()[1])
        return self.local_port

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for side in list(self.active):
            if side.transport is not None:
                side.transport.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
