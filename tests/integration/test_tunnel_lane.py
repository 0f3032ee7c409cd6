"""The tunnel's fast lane: each forwarded connection handed to an OpenSSH master of the
forwarder's own, which moves its bytes in C as ``ssh -L`` does (issue 25's speed figures).

Invariants: while the lane's master answers, a browser's connection is held by that master
and by no Python process; when the master dies (SIGKILL, its socket left behind), every
request is still answered (through nbterm's own asyncssh link) and the lane comes back by
itself; the master never outlives the forwarder that started it, even one killed by SIGKILL;
a remote port that refuses is a closed connection at once, not a hang. nbterm's folders hold
a space and a non-ASCII letter in every test (conftest): the master's socket path does too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote import lane as lane_module
from nbterm.services.remote import mux
from nbterm.services.remote.events import Notice
from nbterm.services.remote.forward import ProcessForward
from nbterm.services.remote.lane import Lane, LaneSpec
from nbterm.services.remote.session import Session, UpResult
from nbterm.services.remote.ssh_config import write_ssh_config
from tests.harness.procs import descendants, free_port
from tests.harness.remote import api_status, remote_config_text, trust_all
from tests.harness.sshd import SshServer
from tests.integration.test_forward_process import _alive
from tests.integration.test_remote import Recorder

pytestmark = pytest.mark.sshd


@pytest.fixture
def config(sshd: SshServer, write_config: Callable[[str], Path]) -> LoadedConfig:
    return load_config(write_config(remote_config_text(sshd)))


@pytest.fixture
async def session(config: LoadedConfig, paths: Paths) -> AsyncIterator[tuple[Session, Recorder]]:
    """A session as both faces make it: the tunnel in a forwarder process, with its lane."""
    recorder = Recorder()
    write_ssh_config(config, paths)
    session = Session.for_host(
        config, "box", paths, verifier=trust_all, on_event=recorder, forward="process",
        probe_interval=0.5,
    )  # fmt: skip
    try:
        yield session, recorder
    finally:
        await session.down()


async def _lane_up(forward: ProcessForward, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not forward.lane_up:
        assert time.monotonic() < deadline, "the lane's master never answered"
        await asyncio.sleep(0.05)


def _cmdline(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _master_of(forwarder: int) -> int:
    masters = [pid for pid in descendants(forwarder) if "ControlMaster=yes" in _cmdline(pid)]
    assert len(masters) == 1, masters
    return masters[0]


def _holders(local_port: int, client_port: int) -> set[int]:
    """The processes that hold the tunnel's end of the TCP connection from ``client_port``."""
    wanted = f"0100007F:{local_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            inode = fields[9]
    assert inode is not None, "no such connection"
    holders = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    holders.add(int(entry.name))
        except OSError:
            continue
    return holders


def _status_request(port: int, token: str) -> bytes:
    return (
        f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: token {token}\r\n\r\n"
    ).encode()


def _ask(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


async def _up_with_lane(sess: Session) -> tuple[UpResult, ProcessForward, int]:
    """Bring the session up and wait for its lane: what ``up`` said, the forward, its master."""
    result = await sess.up()
    forward = sess.forward
    assert isinstance(forward, ProcessForward) and forward.pid is not None
    await _lane_up(forward)
    return result, forward, _master_of(forward.pid)


async def test_a_browsers_connection_is_held_by_the_lanes_master_not_by_python(
    session: tuple[Session, Recorder], paths: Paths
) -> None:
    result, forward, master = await _up_with_lane(session[0])
    command = _cmdline(master)
    assert command[:3] == ["ssh", "-F", str(paths.ssh_config)]
    control = f'ControlPath="{paths.control_dir}/f{forward.pid}"'
    assert control in command and " " in control  # (the path has a space: quoted for ssh)
    with socket.create_connection(("127.0.0.1", result.local_port), timeout=10) as browser:
        request = _status_request(result.local_port, result.server.token)
        for _ in range(3):  # keep-alive: the same connection, answered each time
            assert b"200 OK" in await asyncio.to_thread(_ask, browser, request)
        holders = _holders(result.local_port, browser.getsockname()[1])
        assert holders == {master}, (holders, master, forward.pid)


async def test_a_killed_master_loses_no_request_and_the_lane_comes_back(
    session: tuple[Session, Recorder],
) -> None:
    """3 SIGKILLs of the master (its socket file left behind, as a crash leaves it), each
    followed at once by 6 requests: all 18 are answered, each drop is said once, and the lane
    comes back each time (a new master; restarts in a row wait 1, 2, then 4 s)."""
    sess, recorder = session
    result = await sess.up()
    forward = sess.forward
    assert isinstance(forward, ProcessForward) and forward.pid is not None
    answered = 0
    for kill in range(3):
        await _lane_up(forward)
        master = _master_of(forward.pid)
        mark = len(recorder.events)
        os.kill(master, signal.SIGKILL)
        for _ in range(6):
            status = await asyncio.to_thread(api_status, result.local_port, result.server.token)
            assert "started" in status, kill
            answered += 1
        down = await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "fast lane" in e.message and "down" in e.message,
            10, 0,
        )  # fmt: skip
        assert isinstance(down, Notice)
        assert "goes through nbterm's own link meanwhile" in down.message
        await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "fast lane" in e.message and "back" in e.message,
            20, mark,
        )  # fmt: skip
        assert _master_of(forward.pid) != master
    assert answered == 18
    drops = [e for e in recorder.of(Notice) if "is down" in getattr(e, "message", "")]
    assert len(drops) == 3  # one per drop, none per restart attempt


async def test_the_master_never_outlives_its_forwarder_even_one_killed(
    session: tuple[Session, Recorder], paths: Paths
) -> None:
    """3 SIGKILLs of the forwarder: each time its master ends by itself (its command reads
    the forwarder's pipe), its socket is removed, and the restarted forwarder starts its own."""
    sess, _recorder = session
    result = await sess.up()
    forward = sess.forward
    assert isinstance(forward, ProcessForward)
    for kill in range(3):
        pid = forward.pid
        assert pid is not None
        await _lane_up(forward)
        master = _master_of(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(master):
            assert time.monotonic() < deadline, f"kill {kill}: the master outlived its forwarder"
            await asyncio.sleep(0.05)
        assert not (paths.control_dir / f"f{pid}").exists()
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token, 20)
        assert "started" in status
    await _lane_up(forward)
    assert forward.pid is not None
    last = _master_of(forward.pid)
    await sess.down()
    assert not _alive(last)
    assert list(paths.control_dir.glob("f*")) == []


async def test_a_moved_host_gets_a_new_master(session: tuple[Session, Recorder]) -> None:
    """The host moved (an instance started again elsewhere; the ssh config was rewritten): the
    master on the old address is ended, and a new one reads the config again."""
    result, forward, old = await _up_with_lane(session[0])
    forwarder = forward.pid
    assert forwarder is not None
    forward.retarget(forward.target)
    deadline = time.monotonic() + 20
    while True:  # (a new master is started 1 s after the old one ended, never beside it)
        new = [pid for pid in descendants(forwarder) if "ControlMaster=yes" in _cmdline(pid)]
        if not _alive(old) and new and old not in new and forward.lane_up:
            break
        assert time.monotonic() < deadline, "the old master lives on, or no new one answers"
        await asyncio.sleep(0.05)
    assert _master_of(forwarder) != old
    status = await asyncio.to_thread(api_status, result.local_port, result.server.token)
    assert "started" in status


async def test_a_refused_remote_port_is_a_closed_connection_at_once(
    session: tuple[Session, Recorder],
) -> None:
    sess, _recorder = session
    await sess.up()
    forward = sess.forward
    assert isinstance(forward, ProcessForward)
    await _lane_up(forward)
    port = await forward.add("nothing", free_port(), free_port())
    await asyncio.sleep(0.5)  # (the process serves it: its line is read)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as browser:
        browser.settimeout(5)
        assert browser.recv(100) == b""
    assert time.monotonic() - started < 3


async def test_a_master_that_does_not_connect_is_ended_and_said(
    sshd: SshServer, config: LoadedConfig, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link that hangs as it starts (sshd paused: TCP connects, no banner comes): the master
    is given START_WAIT, then ended and said, not waited on for ever."""
    write_ssh_config(config, paths)
    monkeypatch.setattr(lane_module, "START_WAIT", 1.0)
    heard: list[tuple[bool, str]] = []
    lane = Lane(
        LaneSpec(paths.ssh_config, "box", paths.control_dir),
        lambda up, words: heard.append((up, words)),
    )
    sshd.pause()
    try:
        lane.start()
        deadline = time.monotonic() + 10
        while not heard:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert heard == [(False, "ssh did not connect within 1 s")]
        assert lane.process is not None and lane.process.returncode is not None
        assert not _alive(lane.process.pid)
        assert lane.control_path is None
    finally:
        await lane.close()
        sshd.resume()


async def test_no_master_means_nothing_handed_over(tmp_path: Path) -> None:
    """No socket, or a stale one (a killed master's): the connection stays ours to serve."""
    stale = tmp_path / "stale"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # bound, never listening: what a SIGKILLed master leaves
    ours, theirs = socket.socketpair()
    with ours, theirs:
        for path in (tmp_path / "none", stale):
            with pytest.raises(mux.MuxUnavailableError):
                await mux.hand_over(str(path), ours, "127.0.0.1", 1)
        theirs.sendall(b"still ours")
        assert ours.recv(100) == b"still ours"


def test_the_control_path_reaches_ssh_whole(tmp_path: Path) -> None:
    """A folder with a space, a '%' and a non-ASCII letter: OpenSSH reads the path given."""
    folder = tmp_path / "a b%c é"
    config = tmp_path / "config"
    config.write_text("Host box\n    HostName 127.0.0.1\n")
    lane = Lane(LaneSpec(config, "box", folder))
    argv = lane.argv()
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    shown = subprocess.run(
        ["ssh", "-G", "-F", str(config), *[f"-o{option}" for option in options], "box"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"controlpath {folder}/f{os.getpid()}\n" in shown
    assert "controlmaster true\n" in shown and "controlpersist no\n" in shown
