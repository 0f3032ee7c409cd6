"""Where a host's tunnel runs: on the session's own event loop, or in a process of its own.

``InlineForward`` runs :class:`Tunnel` over the session's SSH connection (tests and embedding).
``ProcessForward`` runs it in ``nbterm.services.remote.forwarder`` with an SSH connection of its
own; both faces use it: drawing the screen, a sync's work or a probe never delays a forwarded
packet, and a process of its own keeps pace with ``ssh -L`` where the session's loop did not.
Both keep the port through reconnects and follow Jupyter to a new remote port; the process is
restarted (same ports) if it ever ends without being asked to. Beside Jupyter's, a host's other
ports (its ``forwards``, and those added for a session) go the same way: ``add`` and ``remove``,
each a listening socket of its own over the same SSH connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, Literal, Protocol

from nbterm.services.remote.connection import HostConnection
from nbterm.services.remote.events import ConnectionChanged
from nbterm.services.remote.forwarder import target_to_json
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.lane import LaneSpec
from nbterm.services.remote.ssh import ConnectFailedError, SshTarget
from nbterm.services.remote.tunnel import Tunnel, listen_local
from nbterm.services.tasks import cancel_and_wait

ForwardMode = Literal["inline", "process"]
STOP_WAIT = 5.0
RESTART_DELAYS = (0.2, 1.0, 5.0, 30.0)
"""Waits before restarting a forwarder process that ended by itself, one per restart in a row;
the last one repeats."""


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


class Forward(Protocol):
    local_port: int
    restarted: int
    """How often its process ended by itself and was started again (0 for one that has none)."""

    async def prepare(self) -> None:
        """Start what can start before the remote port is known."""

    async def open(self, remote_port: int) -> int:
        """Listen on the wanted port (or the next free one) and forward to ``remote_port``."""

    def follow(self, remote_port: int) -> None:
        """Jupyter moved to ``remote_port``: new connections go there."""

    def retarget(self, target: SshTarget) -> None:
        """The host moved to a new address: reconnect there."""

    async def add(self, name: str, remote_port: int, wanted_port: int) -> int:
        """Forward one more port of the remote, on the wanted local port or the next free one
        (PortUnavailableError: none); returns the local port."""

    async def remove(self, name: str) -> None:
        """Stop forwarding ``name``'s port (its open connections close)."""

    def serving(self, name: str) -> bool:
        """``name``'s port is served now (a process restarted meanwhile may not serve it yet)."""

    async def close(self) -> None: ...


class InlineForward:
    """The tunnel on the caller's event loop, over the caller's connection."""

    def __init__(self, connection: HostConnection, wanted_port: int) -> None:
        self.connection = connection
        self.wanted_port = wanted_port
        self.local_port = 0
        self.restarted = 0
        self.tunnel: Tunnel | None = None
        self.others: dict[str, Tunnel] = {}

    async def prepare(self) -> None:
        return None

    async def add(self, name: str, remote_port: int, wanted_port: int) -> int:
        tunnel = Tunnel(self.connection, remote_port, wanted_port)
        port = await tunnel.open()
        self.others[name] = tunnel
        return port

    async def remove(self, name: str) -> None:
        tunnel = self.others.pop(name, None)
        if tunnel is not None:
            await tunnel.close()

    def serving(self, name: str) -> bool:
        return name in self.others

    async def open(self, remote_port: int) -> int:
        self.tunnel = Tunnel(self.connection, remote_port, self.wanted_port)
        self.local_port = await self.tunnel.open()
        return self.local_port

    def follow(self, remote_port: int) -> None:
        if self.tunnel is not None:
            self.tunnel.remote_port = remote_port

    def retarget(self, target: SshTarget) -> None:
        return None  # the connection it shares has moved already

    async def close(self) -> None:
        for name in list(self.others):
            await self.remove(name)
        if self.tunnel is not None:
            await self.tunnel.close()


class ProcessForward:
    """The tunnel in ``nbterm.services.remote.forwarder``, supervised from here.

    ``on_link`` hears every change of the process's SSH link; ``on_notice`` hears what the user
    should know (the process ended by itself and was restarted, with its last words).
    """

    def __init__(
        self,
        target: SshTarget,
        known: KnownHosts,
        wanted_port: int,
        *,
        on_link: Callable[[ConnectionChanged], None],
        on_notice: Callable[[str], None],
        lane: LaneSpec | None = None,
    ) -> None:
        self.target = target
        self.lane = lane
        """The host in nbterm's generated ssh config: the process's bytes then go through an
        OpenSSH master of its own (:mod:`lane`) while it answers."""
        self.lane_up = False
        """The running process said its lane's master answers."""
        self._lane_said = False
        self.known = known
        self.wanted_port = wanted_port
        self.on_link = on_link
        self.on_notice = on_notice
        self.local_port = 0
        self.remote_port: int | None = None
        self.restarts = 0
        """Restarts in a row (the back-off); reset once a restarted process listens."""
        self.restarted = 0
        self._sock: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._listening: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=5)
        self._closing = False
        self.others: dict[str, tuple[socket.socket, int]] = {}
        """The host's other ports: each one's listening socket (this process's, as Jupyter's)
        and its remote port."""
        self._removed: dict[str, asyncio.Future[None]] = {}
        """Removals the process has been asked for: done once its copy of the socket is closed."""
        self.served: set[str] = set()
        """The other ports the running process said it serves."""
        self._sockets: socket.socket | None = None
        """How a socket added while the process runs reaches it (SCM_RIGHTS, one datagram
        each)."""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _spawn(self) -> None:
        if self._sock is None:
            self._sock = listen_local(self.wanted_port)
            self.local_port = int(self._sock.getsockname()[1])
        self._listening = asyncio.get_running_loop().create_future()
        self.served.clear()
        self.lane_up = False
        if self._sockets is not None:
            self._sockets.close()
        self._sockets, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        their_fd = theirs.fileno()
        others = {name: sock.fileno() for name, (sock, _port) in self.others.items()}
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "nbterm.services.remote.forwarder",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(self._sock.fileno(), their_fd, *others.values()),
                start_new_session=True,  # the terminal's signals are not its business: stdin is
            )
        finally:
            theirs.close()  # (the process has its own copy)
        self._send(
            {
                "target": target_to_json(self.target),
                "known_hosts": str(self.known.path),
                "listen_fd": self._sock.fileno(),
                "remote_port": self.remote_port,
                "sockets_fd": their_fd,
                "forwards": [
                    {"name": name, "listen_fd": fd, "remote_port": self.others[name][1]}
                    for name, fd in others.items()
                ],
                "lane": self.lane.to_json() if self.lane is not None else None,
            }
        )
        self._reader = asyncio.create_task(
            self._read(self._proc, self._listening), name=f"forwarder:{self.target.name}"
        )

    def _send(self, message: dict[str, Any]) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._proc.stdin.write((json.dumps(message) + "\n").encode())

    async def prepare(self) -> None:
        await self._spawn()

    async def open(self, remote_port: int) -> int:
        if self._proc is None:
            await self._spawn()
        self.follow(remote_port)
        assert self._listening is not None
        self.local_port = await self._listening
        return self.local_port

    def follow(self, remote_port: int) -> None:
        self.remote_port = remote_port
        self._send({"remote_port": remote_port})

    def retarget(self, target: SshTarget) -> None:
        self.target = target  # (a restarted process starts there too)
        self._send({"target": target_to_json(target)})

    async def add(self, name: str, remote_port: int, wanted_port: int) -> int:
        await self.remove(name)
        sock = listen_local(wanted_port)  # (PortUnavailableError: none free)
        self.others[name] = (sock, remote_port)
        if self._proc is not None and self._proc.returncode is None and self._sockets is not None:
            # the socket first, then the line that names it: the process reads it at once.
            # A process that ended meanwhile is given it again when it is restarted.
            with contextlib.suppress(OSError):
                socket.send_fds(self._sockets, [name.encode()], [sock.fileno()])
                self._send({"add": {"name": name, "remote_port": remote_port}})
        return int(sock.getsockname()[1])

    async def remove(self, name: str) -> None:
        sock, _port = self.others.pop(name, (None, 0))
        served = name in self.served
        self.served.discard(name)
        if sock is None:
            return
        sock.close()
        if served and self._proc is not None and self._proc.returncode is None:
            removed = self._removed[name] = asyncio.get_running_loop().create_future()
            self._send({"remove": name})
            with contextlib.suppress(TimeoutError):  # (it ends meanwhile: its copy goes too)
                await asyncio.wait_for(removed, STOP_WAIT)
            self._removed.pop(name, None)

    def serving(self, name: str) -> bool:
        return name in self.served

    async def _read(self, proc: asyncio.subprocess.Process, listening: asyncio.Future[int]) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        errors = asyncio.create_task(self._read_stderr(proc.stderr))
        try:
            while line := await proc.stdout.readline():
                self._heard(json.loads(line), listening)
            await proc.wait()
            await asyncio.wait_for(errors, 1)
        finally:
            errors.cancel()
        if not listening.done():
            listening.set_exception(
                ConnectFailedError(self.target, f"{self.target.name}: the tunnel's process "
                                   f"ended before listening ({self._last_words(proc)})")
            )  # fmt: skip
        elif not self._closing:
            await self._restart(proc)

    def _heard(self, message: dict[str, Any], listening: asyncio.Future[int]) -> None:
        kind = message.get("kind")
        if kind == "listening" and not listening.done():
            self.restarts = 0
            listening.set_result(int(message["port"]))
        elif kind == "link":
            self.on_link(
                ConnectionChanged(
                    self.target.name,
                    message["state"],
                    str(message.get("message", "")),
                    attempt=int(message.get("attempt", 0)),
                    retry_in=message.get("retry_in"),
                )
            )
        elif kind == "lane":
            self._heard_lane(bool(message.get("up")), str(message.get("message", "")))
        elif kind == "serving" and message.get("name") in self.others:
            self.served.add(str(message["name"]))
        elif kind == "removed" and (removed := self._removed.get(str(message.get("name")))):
            if not removed.done():
                removed.set_result(None)
        elif kind == "not serving":
            self.on_notice(f"{message.get('name')}: not forwarded: {message.get('message')}")
        elif kind == "failed" and not listening.done():
            listening.set_exception(
                ConnectFailedError(self.target, str(message.get("message", "")))
            )

    def _heard_lane(self, up: bool, words: str) -> None:
        """Said once when the lane stops serving (or never starts), once when it serves again:
        not at each of its restarts. The tunnel serves either way, more slowly without it."""
        was, self.lane_up = self.lane_up, up
        if up and self._lane_said:
            self._lane_said = False
            self.on_notice("the tunnel's fast lane (an OpenSSH connection of its own) is back")
        elif not up and (was or not self._lane_said):
            self._lane_said = True
            self.on_notice(
                f"the tunnel's fast lane (an OpenSSH connection of its own) is down ({words}); "
                "the tunnel goes through nbterm's own link meanwhile"
            )

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _last_words(self, proc: asyncio.subprocess.Process) -> str:
        said = " | ".join(line for line in self._stderr if line.strip())
        return _how_it_ended(proc.returncode) + (f": {said}" if said else "")

    async def _restart(self, proc: asyncio.subprocess.Process) -> None:
        delay = RESTART_DELAYS[min(self.restarts, len(RESTART_DELAYS) - 1)]
        self.restarts += 1
        self.restarted += 1
        self.on_notice(
            f"the tunnel's process ended by itself ({self._last_words(proc)}); restarting it "
            f"on port {self.local_port} in {delay:g}s"
        )
        await asyncio.sleep(delay)
        if self._closing:
            return
        self._stderr.clear()
        await self._spawn()
        assert self._listening is not None
        try:
            await self._listening
        except Exception as exc:  # noqa: BLE001 - said; the reader of that process goes on
            self.on_notice(f"the tunnel's process could not start again: {exc}")

    async def close(self) -> None:
        self._closing = True
        if self._listening is not None and not self._listening.done():
            self._listening.cancel()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()  # the process's cue: close the tunnel and the link, exit
            try:
                await asyncio.wait_for(proc.wait(), STOP_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        await cancel_and_wait(self._reader)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for sock, _port in self.others.values():
            sock.close()
        self.others.clear()
        if self._sockets is not None:
            self._sockets.close()
            self._sockets = None
