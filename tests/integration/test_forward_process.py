"""The cockpit's tunnel in a process of its own: supervised, restarted, never left behind.

The forwarder process serves the listening socket a browser uses (nbterm's, inherited). The
invariants: if it dies, nbterm says so and brings it back on the same port, and a request made
meanwhile waits instead of being refused; ``down`` ends it and frees the port; and if nbterm
itself is killed, it ends too (it never outlives nbterm holding the port).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote.events import Notice, RemoteEvent, TunnelHealth
from nbterm.services.remote.forward import ProcessForward
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.session import Session
from tests.harness.procs import end_process, listening_addresses
from tests.harness.remote import api_status, remote_config_text
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder, make_session

pytestmark = pytest.mark.sshd
ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:  # a zombie is not alive
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:  # (reaped between the two looks)
        return False


@pytest.fixture
def config(sshd: SshServer, write_config: Callable[[str], Path]) -> LoadedConfig:
    return load_config(write_config(remote_config_text(sshd)))


@pytest.fixture
async def session(config: LoadedConfig, paths: Paths) -> AsyncIterator[tuple[Session, Recorder]]:
    recorder = Recorder()
    session = make_session(config, paths, recorder, "process")
    try:
        yield session, recorder
    finally:
        await session.down()


def _reconnects_are(count: int, event: RemoteEvent) -> bool:
    return isinstance(event, TunnelHealth) and event.reconnects == count


async def test_a_killed_forwarder_is_said_and_comes_back_on_the_same_port(
    session: tuple[Session, Recorder],
) -> None:
    """3 kills in a row (SIGKILL, at once after the previous restart): each is said, and a
    request made right after the kill is answered on the port the browser has."""
    sess, recorder = session
    result = await sess.up()
    forward = sess.forward
    assert isinstance(forward, ProcessForward)
    for kill in range(3):
        pid = forward.pid
        assert pid is not None
        assert pid != os.getpid()
        mark = len(recorder.events)
        os.kill(pid, signal.SIGKILL)
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token, 20)
        assert "started" in status, kill
        said = await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "ended by itself" in e.message, 5, mark
        )
        assert isinstance(said, Notice)
        assert "killed by SIGKILL" in said.message
        assert f"on port {result.local_port}" in said.message
        assert forward.pid != pid
        assert forward.local_port == result.local_port
        assert listening_addresses(result.local_port) == {"127.0.0.1"}
        # the Tunnels pane's Reconnects counts it: the row does not stay "up, 0" as if
        # nothing happened
        counted = functools.partial(_reconnects_are, kill + 1)
        health = await recorder.wait_for(counted, 15, mark)
        assert isinstance(health, TunnelHealth)


async def test_down_ends_the_forwarder_and_frees_its_port(
    session: tuple[Session, Recorder],
) -> None:
    sess, recorder = session
    result = await sess.up()
    await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.state == "up", 10)
    forward = sess.forward
    assert isinstance(forward, ProcessForward)
    pid = forward.pid
    assert pid is not None
    await sess.down()
    assert not _alive(pid)
    assert listening_addresses(result.local_port) == set()


_PARENT = """
import asyncio, json, sys
from nbterm.config import load_config
from nbterm.locations import resolve_paths
from nbterm.services.remote.session import Session

async def main():
    paths = resolve_paths()
    session = Session.for_host(load_config(paths.config_file), "box", paths, verifier=None,
                               on_event=lambda e: None, forward="process")
    result = await session.up()
    print(json.dumps({"pid": session.forward.pid, "port": result.local_port}), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_forwarder_never_outlives_nbterm(
    config: LoadedConfig, paths: Paths, sshd: SshServer, how: signal.Signals
) -> None:
    """nbterm killed (no clean-up of its own): the forwarder reads the end of its input and
    ends within a second or two, releasing the port; 5 runs per signal."""
    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    for run in range(5):
        parent = subprocess.Popen(
            [sys.executable, "-c", _PARENT],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "tui")},
        )
        forwarder = None
        try:
            assert parent.stdout is not None
            info = json.loads(parent.stdout.readline())
            forwarder = int(info["pid"])
            assert listening_addresses(info["port"]) == {"127.0.0.1"}
            parent.send_signal(how)
            parent.wait(10)
            deadline = time.monotonic() + 5
            while _alive(forwarder) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(forwarder), f"run {run}: the forwarder outlived nbterm"
            assert listening_addresses(info["port"]) == set()
        finally:
            end_process(parent)
            if forwarder is not None and _alive(forwarder):
                os.kill(forwarder, signal.SIGKILL)
