"""The demo's SSH server behaves like sshd where nbterm depends on it.

A command's whole output arrives before its exit status; many short commands on one connection
never take the connection down (a race in the first version did, and the demo's `up` failed);
input reaches the command; a command whose channel is closed is ended.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from nbterm.demo.ssh_server import DemoSshServer, shell_env

Served = tuple[DemoSshServer, asyncssh.SSHClientConnection]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    home = tmp_path / "remote-home"
    home.mkdir()
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = DemoSshServer(home, shell_env(home, []), key.export_public_key("openssh").decode())
    port = await server.start()
    known = asyncssh.import_known_hosts(f"[127.0.0.1]:{port} {server.host_key_line}\n")
    conn = await asyncssh.connect(
        "127.0.0.1", port, username="demo", client_keys=[key], known_hosts=known,
        agent_path=None, config=None,
    )  # fmt: skip
    try:
        yield server, conn
    finally:
        conn.close()
        await conn.wait_closed()
        await server.stop()


async def test_many_short_commands_keep_the_connection(
    served: Served,
) -> None:
    _server, conn = served
    for i in range(150):
        result = await conn.run(f"echo line {i}; echo err {i} >&2; exit {i % 3}", check=False)
        assert (result.stdout, result.stderr, result.exit_status) == (
            f"line {i}\n",
            f"err {i}\n",
            i % 3,
        )
    done = await asyncio.gather(*(conn.run(f"echo {i}", check=False) for i in range(40)))
    assert [r.stdout for r in done] == [f"{i}\n" for i in range(40)]


async def test_large_output_arrives_whole_before_the_exit_status(
    served: Served,
) -> None:
    _server, conn = served
    result = await conn.run("head -c 3000000 /dev/zero | tr '\\0' x", check=False, encoding=None)
    assert result.exit_status == 0
    assert result.stdout == b"x" * 3_000_000


async def test_input_reaches_the_command(
    served: Served,
) -> None:
    _server, conn = served
    result = await conn.run("wc -c", input="y" * 100_000, check=False)
    assert result.stdout == "100000\n"


async def _gone(pid: int) -> bool:
    for _ in range(100):
        try:
            os.kill(pid, 0)  # only pids this test's server started
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.05)
    return False


async def _start(
    conn: asyncssh.SSHClientConnection, pid_file: Path, command: str
) -> tuple[asyncssh.SSHClientProcess[str], int]:
    """Start ``command``, which writes a pid to ``{pid}``; return the process and that pid."""
    process = await conn.create_process(
        command.format(pid=f"{pid_file}.new; mv {pid_file}.new {pid_file}")
    )
    for _ in range(100):
        if pid_file.exists():
            break
        await asyncio.sleep(0.05)
    return process, int(pid_file.read_text())


async def test_closing_the_channel_ends_the_command(served: Served, tmp_path: Path) -> None:
    _server, conn = served
    process, pid = await _start(conn, tmp_path / "pid", "echo $$ > {pid}; exec sleep 60")
    process.close()
    await process.wait_closed()
    assert await _gone(pid), f"the command (pid {pid}) still runs after its channel closed"


async def test_what_a_command_left_in_the_background_ends_with_its_channel(
    served: Served, tmp_path: Path
) -> None:
    """A background job of a command that ignores its input: its process group is ended."""
    _server, conn = served
    process, pid = await _start(conn, tmp_path / "pid", "sleep 61 & echo $! > {pid}; wait")
    process.close()
    await process.wait_closed()
    assert await _gone(pid), f"pid {pid} outlived its command's channel"
