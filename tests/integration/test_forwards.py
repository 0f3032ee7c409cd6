"""A host's other ports (TensorBoard, MLflow, an app started from a cell) beside Jupyter's.

Against the loopback sshd, with servers on the remote's 127.0.0.1: an HTTP server, a raw TCP
echo, one that accepts and says nothing, and a port where nothing listens. Each case runs with
the tunnel on the session's loop and in the forwarder process (the cockpit's). The invariants:
each forward listens on 127.0.0.1 only, its probe says what its server is (HTTP, TCP, silent,
nothing there), and it heals across an sshd restart on the same local port.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote.events import (
    ForwardClosed,
    ForwardHealth,
    ForwardOpened,
    Notice,
    RemoteEvent,
)
from nbterm.services.remote.forward import ProcessForward
from nbterm.services.remote.session import Session
from tests.harness.procs import listening_addresses
from tests.harness.remote import remote_config_text
from tests.harness.services import RemoteServices, remote_services
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder, make_session

pytestmark = pytest.mark.sshd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def services() -> Iterator[RemoteServices]:
    with remote_services() as running:
        yield running


@pytest.fixture
def ports() -> dict[str, int]:
    """The laptop's side: a local port for each forward, free now."""
    return {name: free_port() for name in ("web", "echo", "quiet", "nothing")}


@pytest.fixture
def config(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    services: RemoteServices,
    ports: dict[str, int],
) -> LoadedConfig:
    forwards = ", ".join(
        f'{{ name = "{name}", remote_port = {remote}, local_port = {ports[name]} }}'
        for name, remote in (
            ("web", services.http),
            ("echo", services.echo),
            ("quiet", services.silent),
            ("nothing", services.closed),
        )
    )
    return load_config(write_config(remote_config_text(sshd) + f"forwards = [{forwards}]\n"))


@pytest.fixture(params=["inline", "process"])
async def session(
    config: LoadedConfig, paths: Paths, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Session, Recorder]]:
    recorder = Recorder()
    session = make_session(config, paths, recorder, request.param)
    try:
        yield session, recorder
    finally:
        await session.down()


def fetch(port: int, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as answer:
        return bytes(answer.read())


def echo(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def _health(name: str, state: str, event: RemoteEvent) -> bool:
    return isinstance(event, ForwardHealth) and event.name == name and event.state == state


async def test_each_forward_listens_on_loopback_and_its_probe_says_what_answers(
    session: tuple[Session, Recorder], ports: dict[str, int]
) -> None:
    sess, recorder = session
    result = await sess.up()
    assert {f.name: f.local_port for f in result.forwards} == ports
    opened = {e.name: e for e in recorder.of(ForwardOpened) if isinstance(e, ForwardOpened)}
    assert set(opened) == set(ports)
    for name, port in ports.items():
        assert listening_addresses(port) == {"127.0.0.1"}, name
        assert opened[name].url == f"http://127.0.0.1:{port}/"
    assert await asyncio.to_thread(fetch, ports["web"]) == b"tensorboard-ish page\n"
    payload = os.urandom(300_000)
    assert await asyncio.to_thread(echo, ports["echo"], payload) == payload
    web = await recorder.wait_for(functools.partial(_health, "web", "up"), 10)
    tcp = await recorder.wait_for(functools.partial(_health, "echo", "up"), 10)
    quiet = await recorder.wait_for(functools.partial(_health, "quiet", "up"), 10)
    nothing = await recorder.wait_for(functools.partial(_health, "nothing", "no server"), 10)
    assert isinstance(web, ForwardHealth) and web.answer == "HTTP 200"
    assert web.latency_ms is not None
    assert isinstance(tcp, ForwardHealth) and tcp.answer == "TCP"
    assert isinstance(quiet, ForwardHealth) and quiet.answer == "open, silent"
    assert quiet.latency_ms is None
    assert isinstance(nothing, ForwardHealth)
    assert "nothing listens on the remote's port" in nothing.message
    # a state is never claimed for a port the probe did not see: none of them said otherwise
    for event in recorder.of(ForwardHealth):
        assert isinstance(event, ForwardHealth)
        expected = {"web": "up", "echo": "up", "quiet": "up", "nothing": "no server"}
        assert event.state in (expected[event.name], "connecting"), event


async def test_forwards_heal_across_an_sshd_restart_on_the_same_ports(
    session: tuple[Session, Recorder], sshd: SshServer, ports: dict[str, int]
) -> None:
    """3 restarts in a row: each time every forward says reconnecting, a request made while
    sshd is down waits and is answered, and the ports are the ones the browser has."""
    sess, recorder = session
    await sess.up()
    await recorder.wait_for(functools.partial(_health, "web", "up"), 10)
    for restart in range(3):
        mark = len(recorder.events)
        sshd.stop()
        await recorder.wait_for(functools.partial(_health, "web", "reconnecting"), 10, mark)
        await recorder.wait_for(functools.partial(_health, "echo", "reconnecting"), 10, mark)
        pending = asyncio.create_task(asyncio.to_thread(fetch, ports["web"], 25))
        await asyncio.sleep(0.5)
        sshd.start()
        assert await asyncio.wait_for(pending, 30) == b"tensorboard-ish page\n", restart
        assert await asyncio.to_thread(echo, ports["echo"], b"again") == b"again"
        await recorder.wait_for(functools.partial(_health, "web", "up"), 15, mark)
        for name, port in ports.items():
            assert listening_addresses(port) == {"127.0.0.1"}, (restart, name)


async def test_a_port_added_for_the_session_works_closes_and_goes_with_down(
    session: tuple[Session, Recorder], services: RemoteServices
) -> None:
    sess, recorder = session
    await sess.up()
    wanted = free_port()
    added = await sess.add_forward(services.echo, wanted)
    assert added.session_only
    assert added.local_port == wanted
    assert listening_addresses(wanted) == {"127.0.0.1"}
    assert await asyncio.to_thread(echo, wanted, b"ad hoc") == b"ad hoc"
    await recorder.wait_for(functools.partial(_health, added.name, "up"), 10)
    assert await sess.add_forward(services.echo, wanted) == added  # asked twice: the same one
    assert await sess.close_forward(added.name)
    assert listening_addresses(wanted) == set()
    assert any(isinstance(e, ForwardClosed) and e.name == added.name for e in recorder.events)
    assert await sess.add_forward(services.http) == sess.others["web"]  # the config's has it
    assert await sess.close_forward("web")
    again = await sess.add_forward(services.http)  # no local port: the remote's, taken here
    assert again.local_port != services.http  # (the "remote" is this machine: it is busy)
    assert await asyncio.to_thread(fetch, again.local_port) == b"tensorboard-ish page\n"
    opened = [e for e in recorder.of(ForwardOpened) if isinstance(e, ForwardOpened)]
    assert opened[-1].fell_back and opened[-1].wanted_port == services.http
    await sess.down()
    assert listening_addresses(again.local_port) == set()
    closed = [e for e in recorder.of(ForwardClosed) if isinstance(e, ForwardClosed)]
    assert closed[-1].name == again.name and closed[-1].session_only


async def test_a_busy_local_port_takes_the_next_free_one(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    services: RemoteServices,
    paths: Paths,
) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = int(busy.getsockname()[1])
    text = remote_config_text(sshd) + (
        f'forwards = [{{ name = "web", remote_port = {services.http}, local_port = {port} }}]\n'
    )
    recorder = Recorder()
    sess = make_session(load_config(write_config(text)), paths, recorder, "process")
    try:
        result = await sess.up()
        (web,) = result.forwards
        assert web.local_port > port
        assert await asyncio.to_thread(fetch, web.local_port) == b"tensorboard-ish page\n"
        opened = recorder.of(ForwardOpened)[0]
        assert isinstance(opened, ForwardOpened) and opened.fell_back
    finally:
        await sess.down()
        busy.close()


async def test_a_killed_forwarder_brings_back_every_port_and_those_added_since(
    config: LoadedConfig, paths: Paths, services: RemoteServices, ports: dict[str, int]
) -> None:
    """The forwarder process killed twice (SIGKILL), once before a port is added and once
    after: each time every port answers again on the same local port."""
    recorder = Recorder()
    sess = make_session(config, paths, recorder, "process")
    try:
        await sess.up()
        forward = sess.forward
        assert isinstance(forward, ProcessForward)
        added = None
        for kill in range(2):
            pid = forward.pid
            assert pid is not None
            mark = len(recorder.events)
            os.kill(pid, signal.SIGKILL)
            await recorder.wait_for(
                lambda e: isinstance(e, Notice) and "ended by itself" in e.message, 10, mark
            )
            assert await asyncio.to_thread(fetch, ports["web"], 20) == b"tensorboard-ish page\n"
            if added is None:
                added = await sess.add_forward(services.echo, free_port())
            assert await asyncio.to_thread(echo, added.local_port, b"kill %d" % kill) == (
                b"kill %d" % kill
            )
            await recorder.wait_for(functools.partial(_health, added.name, "up"), 10, mark)
    finally:
        await sess.down()
