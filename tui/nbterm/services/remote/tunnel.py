"""A local forward to the remote Jupyter that survives reconnects.

nbterm owns the listening socket on 127.0.0.1 and opens one SSH ``direct-tcpip`` channel per
accepted connection over whichever SSH connection is current. The port is never released during a
reconnect: a browser request made meanwhile waits (up to a bound) instead of being refused, and
open tabs recover by themselves. Bytes are moved by protocol callbacks with flow control both
ways, not by Python-level read/write loops.

Given a :class:`Lane` (the forwarder process's), an accepted connection is first offered to the
lane's OpenSSH master, which then moves its bytes itself (:mod:`mux`); only when no master
answers does it go through the asyncssh link as above.
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

from nbterm.services.remote import mux
from nbterm.services.remote.connection import HostConnection
from nbterm.services.remote.lane import Lane

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
        lane: Lane | None = None,
    ) -> None:
        self.connection = connection
        self.remote_port = remote_port
        self.wanted_port = wanted_port
        self.wait_for_link = wait_for_link
        self.window = window
        self.max_pktsize = max_pktsize
        self.sock = sock
        """A listening socket made by :func:`listen_local` elsewhere (the forwarder's parent)."""
        self.lane = lane
        """While its master answers, each accepted connection is handed to it (see :mod:`lane`)."""
        self.local_port = 0
        self.active: set[_LocalSide] = set()
        """Connections forwarded through the asyncssh link."""
        self.handed: set[socket.socket] = set()
        """The control connections of those handed to the lane's master, one each."""
        self._server: asyncio.Server | None = None
        self._listening: socket.socket | None = None
        self._routing: set[asyncio.Task[None]] = set()

    async def open(self) -> int:
        """Bind the wanted port, or the next free one (or serve ``sock``); return the port."""
        sock = self.sock if self.sock is not None else listen_local(self.wanted_port)
        if self.lane is None:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _LocalSide(self), sock=sock
            )
        else:
            sock.setblocking(False)
            self._listening = sock
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)
        self.local_port = int(sock.getsockname()[1])
        return self.local_port

    def _accept(self) -> None:
        listening = self._listening
        if listening is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _address = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # (EMFILE: out of descriptors) a second's pause, as asyncio's own
                loop.remove_reader(listening.fileno())  # server takes, not a busy loop
                loop.call_later(1.0, self._resume_accepting, listening)
                return
            task = loop.create_task(self._route(conn))
            self._routing.add(task)
            task.add_done_callback(self._routing.discard)

    def _resume_accepting(self, listening: socket.socket) -> None:
        if self._listening is listening:  # (not closed meanwhile)
            asyncio.get_running_loop().add_reader(listening.fileno(), self._accept)

    async def _route(self, conn: socket.socket) -> None:
        """Hand ``conn`` to the lane's master, or forward it through the asyncssh link."""
        try:
            await self._route_one(conn)
        except BaseException:  # (cancelled: the tunnel closes)
            conn.close()
            raise

    async def _route_one(self, conn: socket.socket) -> None:
        control_path = self.lane.control_path if self.lane is not None else None
        if control_path is not None:
            # as ssh -L's own accepted sockets (and asyncio's transports): small writes go out
            # at once, not after the browser's delayed ACK
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                ctl = await mux.hand_over(control_path, conn, LOCAL_HOST, self.remote_port)
            except mux.MuxUnavailableError:
                pass  # nothing was handed over: the link below serves it
            except mux.MuxRefusedError:
                conn.close()  # the remote refused the port: as ssh -L, a closed connection
                return
            else:
                conn.close()  # the master has its own copy now
                self._watch(ctl)
                return
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: _LocalSide(self), conn)
        except OSError:
            conn.close()

    def _watch(self, ctl: socket.socket) -> None:
        """The master closes ``ctl`` when the forwarded connection ends: then forget it."""
        loop = asyncio.get_running_loop()
        self.handed.add(ctl)

        def readable() -> None:
            try:
                if ctl.recv(4096):
                    return  # (a message a stdio forward does not expect: not an end)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            self._forget(ctl)

        loop.add_reader(ctl.fileno(), readable)

    def _forget(self, ctl: socket.socket) -> None:
        if ctl in self.handed:
            self.handed.discard(ctl)
            asyncio.get_running_loop().remove_reader(ctl.fileno())
            ctl.close()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        listening, self._listening = self._listening, None
        if listening is not None:
            asyncio.get_running_loop().remove_reader(listening.fileno())
            listening.close()
        for task in list(self._routing):
            task.cancel()
        for ctl in list(self.handed):
            self._forget(ctl)  # the master ends that forwarded connection
        for side in list(self.active):
            if side.transport is not None:
                side.transport.close()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
