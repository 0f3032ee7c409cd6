"""An in-process SSH server (asyncssh) that plays the remote machines of the demo.

Commands run as the local user in a sandbox home; forwards go to 127.0.0.1 only; rsync and
OpenSSH's client work against it as against any sshd.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import traceback
from pathlib import Path
from typing import Any

import asyncssh

END_GRACE = 2.0
"""Seconds a command gets to end by itself once its channel is gone."""


class _Server(asyncssh.SSHServer):
    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        return dest_host in ("127.0.0.1", "localhost")  # the tunnel to Jupyter, nothing else

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False


class DemoSshServer:
    def __init__(self, home: Path, env: dict[str, str], authorized_key: str) -> None:
        self.home = home
        self.env = env
        self.authorized_key = authorized_key
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = 0
        self._acceptor: Any = None
        self._children: set[asyncio.subprocess.Process] = set()

    @property
    def host_key_line(self) -> str:
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """One remote command; nothing it does may take the whole connection down."""
        try:
            await self._run_command(process)
        except Exception:  # noqa: BLE001 - reported in the demo's log, and the command fails
            with (self.home.parent / "demo-ssh.log").open("a") as log:
                log.write(f"{process.command!r}\n{traceback.format_exc()}\n")
            with contextlib.suppress(Exception):
                process.exit(255)

    async def _run_command(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run the command as sshd would: the channel closes after its output has been sent.

        Output is copied here rather than with ``process.redirect``: a redirect keeps copying in
        the background after the command exits, and a write into the channel that ``exit`` has
        just closed raised inside asyncssh and took the whole connection down with it.
        """
        command = process.command or "exec ${SHELL:-/bin/sh} -i"
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command,
            cwd=self.home, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self._children.add(child)
        stdin, stdout, stderr = child.stdin, child.stdout, child.stderr
        if stdin is None or stdout is None or stderr is None:  # pragma: no cover - all are PIPE
            raise RuntimeError("the command's pipes were not created")
        feeding = asyncio.ensure_future(_feed_stdin(process.stdin, stdin))
        copies = (_copy_output(stdout, process.stdout), _copy_output(stderr, process.stderr))
        output = asyncio.ensure_future(asyncio.gather(*copies))
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            either: list[asyncio.Future[Any]] = [output, closed]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if output.done() and not output.exception():
                # all output is out (as with sshd, a command's end is the end of its output)
                process.exit(await child.wait())
        finally:
            for task in (feeding, output, closed):
                task.cancel()
            await asyncio.gather(feeding, output, closed, return_exceptions=True)
            if child.returncode is None:  # the client closed the channel first
                await _end(child)
            self._children.discard(child)

    async def start(self) -> int:
        keys = asyncssh.import_authorized_keys(self.authorized_key)
        self._acceptor = await asyncssh.create_server(
            _Server,
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            authorized_client_keys=keys,
            process_factory=self._run,
            encoding=None,
            allow_pty=False,
        )
        self.port = int(self._acceptor.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        await asyncio.gather(*(_end(child) for child in list(self._children)))
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 5)


async def _end(child: asyncio.subprocess.Process) -> None:
    """End a command whose channel is gone, with everything it started in the background.

    As with sshd, its input is closed first (a remote watcher ends itself on that); whatever is
    left of its process group after a grace period is terminated. Each command is a session
    leader (``start_new_session``), so its group is exactly what it started; tmux and Jupyter
    detach into sessions of their own and are not touched.
    """
    if child.stdin is not None:
        child.stdin.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(child.wait(), END_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGTERM)
    await child.wait()


async def _feed_stdin(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    """The channel's input into the command; its end (EOF, or the channel closing) closes stdin."""
    try:
        while True:
            try:
                data = await source.read(65536)
            except asyncssh.Error:
                break
            except (asyncssh.BreakReceived, asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
                continue  # nothing in the demo sends these; they are not input
            if not data:
                break
            sink.write(data)
            await sink.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the command stopped reading
    finally:
        sink.close()


async def _copy_output(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()


def shell_env(home: Path, extra_path: list[str]) -> dict[str, str]:
    """The environment of the demo's "remote" commands: its own home and tmux server."""
    path = ":".join([*extra_path, os.environ.get("PATH", "/usr/bin:/bin")])
    return {
        "HOME": str(home),
        "PATH": path,
        "SHELL": "/bin/sh",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMUX_TMPDIR": str(home.parent / "tmux"),  # a tmux server of its own, not the user's
        "USER": os.environ.get("USER", "demo"),
        "TERM": "dumb",
    }


def quote(path: Path) -> str:
    return shlex.quote(str(path))
