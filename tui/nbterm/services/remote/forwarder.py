"""The tunnel in a process of its own: ``python -m nbterm.services.remote.forwarder``.

In the cockpit, the forward shares nothing with Textual: every forwarded packet would otherwise
wait for whatever the screen is drawing (measured: holding Tab in the cockpit took HTTP keep-alive
through the tunnel from 0.7 ms to 12 ms at p50 and 229 ms at p99). A thread with its own event loop
would still wait for the interpreter lock while the UI renders; a process waits for nothing.

The process holds its own SSH connection (strict host keys from nbterm's file, no questions: the
parent has verified the key before it starts this) and one :class:`Tunnel`; given a ``lane``, an
OpenSSH master of its own too, which then moves each forwarded connection's bytes (:mod:`lane`).
It never sees a token.
It talks JSON lines:

- stdin, first line: ``{"target": {...}, "known_hosts": PATH, "listen_fd": N, "remote_port": N,
  "sockets_fd": N, "forwards": [{"name": ..., "listen_fd": N, "remote_port": N}],
  "lane": {"ssh_config": PATH, "alias": ..., "control_dir": PATH} or null}``
  (``remote_port`` may be null: the process connects meanwhile and serves Jupyter's port once it
  is given; ``forwards`` are the host's other ports, served at once);
  later lines: ``{"remote_port": N}`` when Jupyter moved, ``{"target": {...}}`` when the host
  did, ``{"add": {"name": ..., "remote_port": N}}`` for a port added meanwhile (its listening
  socket comes first, as a datagram on ``sockets_fd`` that carries it and its name),
  ``{"remove": NAME}``. End of input (the parent closed it, or died) ends the process.
- stdout: ``{"kind": "listening", "port": N}``, ``{"kind": "serving", "name": ...}`` for each
  other port served, ``{"kind": "not serving", "name": ..., "message": ...}``,
  ``{"kind": "removed", "name": ...}`` once a removed port no longer listens,
  ``{"kind": "link", "state": ..., "message": ..., "attempt": N, "retry_in": S}`` for every
  change of its SSH link, ``{"kind": "lane", "up": BOOL, "message": ...}`` for every change of
  its fast lane (an OpenSSH master that moves the bytes, :mod:`lane`), and
  ``{"kind": "failed", "message": ...}`` before it exits 1.

The listening socket is the parent's, inherited (``listen_fd``): while this process restarts,
a browser's new connections wait in the socket's backlog instead of being refused, and no other
program can take the port meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path
from typing import Any

from nbterm.services.remote.connection import HostConnection
from nbterm.services.remote.events import ConnectionChanged, RemoteEvent
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.lane import Lane, LaneSpec
from nbterm.services.remote.ssh import SshError, SshTarget
from nbterm.services.remote.tunnel import Tunnel


def target_to_json(target: SshTarget) -> dict[str, Any]:
    return {
        "name": target.name,
        "address": target.address,
        "port": target.port,
        "alias": target.alias,
        "user": target.user,
        "identity_file": str(target.identity_file) if target.identity_file else None,
        "connect_timeout": target.connect_timeout,
        "keepalive_interval": target.keepalive_interval,
        "keepalive_count_max": target.keepalive_count_max,
        "jump": target_to_json(target.jump) if target.jump is not None else None,
        "identity_agent": str(target.identity_agent) if target.identity_agent else None,
        "certificate_file": str(target.certificate_file) if target.certificate_file else None,
        "proxy_command": target.proxy_command,
    }


def target_from_json(data: dict[str, Any]) -> SshTarget:
    return SshTarget(
        name=str(data["name"]),
        address=str(data["address"]),
        port=int(data["port"]),
        alias=str(data["alias"]),
        user=data["user"],
        identity_file=Path(data["identity_file"]) if data["identity_file"] else None,
        connect_timeout=float(data["connect_timeout"]),
        keepalive_interval=float(data["keepalive_interval"]),
        keepalive_count_max=int(data["keepalive_count_max"]),
        jump=target_from_json(data["jump"]) if data["jump"] is not None else None,
        identity_agent=Path(data["identity_agent"]) if data["identity_agent"] else None,
        certificate_file=Path(data["certificate_file"]) if data["certificate_file"] else None,
        proxy_command=data["proxy_command"],
    )


def _say(message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the parent is gone: it will not read this anyway
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def _link_event(event: RemoteEvent) -> None:
    if isinstance(event, ConnectionChanged):
        _say(
            {
                "kind": "link",
                "state": event.state,
                "message": event.message,
                "attempt": event.attempt,
                "retry_in": event.retry_in,
            }
        )


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _received_socket(sockets: socket.socket | None, name: str) -> socket.socket | None:
    """The listening socket the parent sent for ``name`` (it was sent before the line that
    asked for it: it is there to read, without waiting)."""
    if sockets is None:
        return None
    with contextlib.suppress(OSError):
        said, fds, _flags, _address = socket.recv_fds(sockets, 256, 4)
        received = [socket.socket(fileno=fd) for fd in fds]
        if said.decode(errors="replace") == name and len(received) == 1:
            return received[0]
        for sock in received:
            sock.close()
    return None


async def serve() -> int:
    commands = await _stdin_lines()
    first = await commands.readline()
    if not first:
        return 0
    spec = json.loads(first)
    connection = HostConnection(
        target_from_json(spec["target"]), KnownHosts(Path(spec["known_hosts"])), None, _link_event
    )
    sockets = socket.socket(fileno=int(spec["sockets_fd"])) if spec.get("sockets_fd") else None
    jupyter: Tunnel | None = None
    others: dict[str, Tunnel] = {}
    lane = (
        Lane(
            LaneSpec.from_json(spec["lane"]),
            lambda up, words: _say({"kind": "lane", "up": up, "message": words}),
        )
        if spec.get("lane")
        else None
    )

    async def serve_other(name: str, sock: socket.socket, remote_port: int) -> None:
        if name in others:
            await others.pop(name).close()
        others[name] = Tunnel(connection, remote_port, 0, sock=sock, lane=lane)
        await others[name].open()
        _say({"kind": "serving", "name": name})

    try:
        try:
            await connection.open()
        except SshError as exc:
            _say({"kind": "failed", "message": str(exc)})
            return 1
        if lane is not None:  # (after the link: the host's key is in nbterm's file by now)
            lane.start()
        for other in spec.get("forwards", []):
            listening = socket.socket(fileno=int(other["listen_fd"]))
            await serve_other(str(other["name"]), listening, int(other["remote_port"]))
        remote_port = spec.get("remote_port")
        while True:
            if jupyter is None and remote_port is not None:
                listening = socket.socket(fileno=int(spec["listen_fd"]))
                jupyter = Tunnel(connection, int(remote_port), 0, sock=listening, lane=lane)
                _say({"kind": "listening", "port": await jupyter.open()})
            line = await commands.readline()
            if not line:
                return 0
            command = json.loads(line)
            if "remote_port" in command:
                remote_port = command["remote_port"]
                if jupyter is not None:
                    jupyter.remote_port = int(remote_port)
            if "target" in command:  # the host moved: the next reconnect goes there
                connection.target = target_from_json(command["target"])
                if lane is not None:
                    lane.recycle()  # (its master's link went to the old address)
            if "add" in command:
                name = str(command["add"]["name"])
                sock = _received_socket(sockets, name)
                if sock is None:
                    _say({"kind": "not serving", "name": name, "message": "its socket did not "
                          "reach the tunnel's process"})  # fmt: skip
                else:
                    await serve_other(name, sock, int(command["add"]["remote_port"]))
            if "remove" in command:
                if str(command["remove"]) in others:
                    await others.pop(str(command["remove"])).close()
                _say({"kind": "removed", "name": command["remove"]})
    finally:
        for tunnel in [*others.values(), *([jupyter] if jupyter is not None else [])]:
            await tunnel.close()
        if sockets is not None:
            sockets.close()
        if lane is not None:
            await lane.close()
        await connection.close()


def main() -> None:
    sys.exit(asyncio.run(serve()))


if __name__ == "__main__":
    main()
