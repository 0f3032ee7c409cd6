"""The tunnel in a process of its own: ``python -m nbterm.services.remote.forwarder``.

In the cockpit, the forward shares nothing with Textual: every forwarded packet would otherwise
wait for whatever the screen is drawing (measured: holding Tab in the cockpit took HTTP keep-alive
through the tunnel from 0.7 ms to 12 ms at p50 and 229 ms at p99). A thread with its own event loop
would still wait for the interpreter lock while the UI renders; a process waits for nothing.

The process holds its own SSH connection (strict host keys from nbterm's file, no questions: the
parent has verified the key before it starts this) and one :class:`Tunnel`. It never sees a token.
It talks JSON lines:

- stdin, first line: ``{"target": {...}, "known_hosts": PATH, "listen_fd": N, "remote_port": N}``
  (``remote_port`` may be null: the process connects meanwhile and serves once it is given);
  later lines: ``{"remote_port": N}`` when Jupyter moved, ``{"target": {...}}`` when the host
  did. End of input (the parent closed it, or died) ends the process.
- stdout: ``{"kind": "listening", "port": N}``, ``{"kind": "link", "state": ..., "message": ...,
  "attempt": N, "retry_in": S}`` for every change of its SSH link, and ``{"kind": "failed",
  "message": ...}`` before it exits 1.

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


async def serve() -> int:
    commands = await _stdin_lines()
    first = await commands.readline()
    if not first:
        return 0
    spec = json.loads(first)
    connection = HostConnection(
        target_from_json(spec["target"]), KnownHosts(Path(spec["known_hosts"])), None, _link_event
    )
    tunnel: Tunnel | None = None
    try:
        try:
            await connection.open()
        except SshError as exc:
            _say({"kind": "failed", "message": str(exc)})
            return 1
        remote_port = spec.get("remote_port")
        while remote_port is None:
            line = await commands.readline()
            if not line:
                return 0
            remote_port = json.loads(line).get("remote_port")
        listening = socket.socket(fileno=int(spec["listen_fd"]))
        tunnel = Tunnel(connection, int(remote_port), 0, sock=listening)
        port = await tunnel.open()
        _say({"kind": "listening", "port": port})
        while line := await commands.readline():
            command = json.loads(line)
            if "remote_port" in command:
                tunnel.remote_port = int(command["remote_port"])
            if "target" in command:  # the host moved: the next reconnect goes there
                connection.target = target_from_json(command["target"])
        return 0
    finally:
        if tunnel is not None:
            await tunnel.close()
        await connection.close()


def main() -> None:
    sys.exit(asyncio.run(serve()))


if __name__ == "__main__":
    main()
