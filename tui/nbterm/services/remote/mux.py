"""A forwarded connection handed to an OpenSSH master, which then moves its bytes itself.

OpenSSH's connection sharing (``ControlMaster``) lets a client pass the master two file
descriptors and a destination (``MUX_C_NEW_STDIO_FWD``, what ``ssh -W`` does through a master;
OpenSSH's PROTOCOL.mux). nbterm passes the browser's accepted socket: from then on OpenSSH's C
code reads it, encrypts and writes it, exactly as ``ssh -L`` would, and no byte goes through
Python. What nbterm keeps is the control connection: the master closes it when the forwarded
connection has ended, and closing it ends the forwarded connection.

Only a master nbterm started itself is spoken to (see :mod:`nbterm.services.remote.lane`).
"""

from __future__ import annotations

import asyncio
import socket
import struct

HELLO = 0x00000001
NEW_STDIO_FWD = 0x10000008
PERMISSION_DENIED = 0x80000002
FAILURE = 0x80000003
SESSION_OPENED = 0x80000006
VERSION = 4
MAX_MESSAGE = 64 * 1024
"""A master's replies are a few dozen bytes; anything longer is not a master."""


class MuxUnavailableError(Exception):
    """No master answered, or it ended before it took the socket: nothing was read from the
    socket, and only we hold it."""


class MuxRefusedError(Exception):
    """The master answered and did not forward the socket (the remote refused the port)."""


def _packet(*fields: int | bytes) -> bytes:
    body = b"".join(
        struct.pack(">I", f) if isinstance(f, int) else struct.pack(">I", len(f)) + f
        for f in fields
    )
    return struct.pack(">I", len(body)) + body


async def _read_message(loop: asyncio.AbstractEventLoop, ctl: socket.socket) -> bytes:
    head = await _read_exactly(loop, ctl, 4)
    (size,) = struct.unpack(">I", head)
    if not 4 <= size <= MAX_MESSAGE:
        raise ConnectionError(f"a message of {size} bytes")
    return await _read_exactly(loop, ctl, size)


async def _read_exactly(loop: asyncio.AbstractEventLoop, ctl: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(ctl, size - len(data))
        if not chunk:
            raise ConnectionError("the master closed its end")
        data += chunk
    return data


def _reason(body: bytes) -> str:
    """The text of a FAILURE or PERMISSION_DENIED reply (type, request id, string)."""
    if len(body) < 12:
        return "no reason given"
    (size,) = struct.unpack(">I", body[8:12])
    return body[12 : 12 + min(size, 200)].decode(errors="replace")


async def answers(control_path: str, timeout: float = 1.0) -> bool:
    """Whether a master listens at ``control_path`` (a hello each way, then closed)."""
    loop = asyncio.get_running_loop()
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(ctl, control_path), timeout)
        await loop.sock_sendall(ctl, _packet(HELLO, VERSION))
        hello = await asyncio.wait_for(_read_message(loop, ctl), timeout)
        return hello[:8] == struct.pack(">II", HELLO, VERSION)
    except (OSError, ConnectionError, TimeoutError):
        return False
    finally:
        ctl.close()


async def hand_over(control_path: str, conn: socket.socket, host: str, port: int) -> socket.socket:
    """Ask the master listening at ``control_path`` to forward ``conn`` to ``host:port`` on the
    remote; return the control connection, which lives as long as the forwarded one.

    :class:`MuxUnavailableError`: no master listens, or it ended before answering (nothing
    was read from ``conn``: it may be served another way). :class:`MuxRefusedError`: the
    master answered and did not forward it (the remote refused): ``conn`` is to be closed.
    Either way the caller closes its own copy of ``conn`` once this returns.
    """
    loop = asyncio.get_running_loop()
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.setblocking(False)
    try:
        try:
            await loop.sock_connect(ctl, control_path)
        except OSError as exc:  # (no socket, or a stale one: its master was killed)
            raise MuxUnavailableError(str(exc)) from exc
        # Hello, request and descriptors at once, without waiting for the master's hello: it
        # reads each message exactly (never into the next), then takes the descriptors.
        request = _packet(HELLO, VERSION) + _packet(NEW_STDIO_FWD, 1, b"", host.encode(), port)
        try:
            await loop.sock_sendall(ctl, request)
            for _ in range(2):  # its stdin, then its stdout: the same socket
                socket.send_fds(ctl, [b"\0"], [conn.fileno()])
            hello = await _read_message(loop, ctl)
            reply = await _read_message(loop, ctl)
        except (OSError, ConnectionError) as exc:
            # The master ended (killed, or its link dropped) before it answered. It reads a
            # stdio forward's descriptors only once the remote opened the channel, which it
            # says first: so nothing was read from ``conn``, and its copies died with it.
            raise MuxUnavailableError(
                f"the master ended before it took the connection ({exc})"
            ) from exc
        if hello[:8] != struct.pack(">II", HELLO, VERSION):
            raise MuxRefusedError("not an OpenSSH master of protocol 4")
        kind = struct.unpack(">I", reply[:4])[0] if len(reply) >= 4 else 0
        if kind != SESSION_OPENED:
            raise MuxRefusedError(_reason(reply) if kind in (FAILURE, PERMISSION_DENIED) else
                                  f"an unexpected reply 0x{kind:08x}")  # fmt: skip
    except BaseException:
        ctl.close()
        raise
    return ctl
