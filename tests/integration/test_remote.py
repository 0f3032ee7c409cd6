"""The remote session core against a real sshd and a real Jupyter server, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh
import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote import jupyter
from nbterm.services.remote.connection import Backoff
from nbterm.services.remote.events import (
    HostKeyTrusted,
    JupyterReady,
    Notice,
    RemoteEvent,
    TunnelHealth,
    TunnelOpened,
)
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.host_keys import HostKeyQuestion, KnownHosts
from nbterm.services.remote.session import Session
from nbterm.services.remote.ssh import (
    HostKeyChangedError,
    HostKeyRejectedError,
    HostKeyUnknownError,
    close_quietly,
    connect,
    run,
    target_for,
)
from nbterm.widgets.tunnels import state_words
from tests.harness.kernel import KernelClient
from tests.harness.procs import listening_addresses
from tests.harness.remote import (
    REMOTE_PORT,
    SESSION,
    api_status,
    http_get,
    remote_config_text,
    trust_all,
)
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


@pytest.fixture
def config(sshd: SshServer, write_config: Callable[[str], Path]) -> LoadedConfig:
    return load_config(write_config(remote_config_text(sshd)))


class Recorder:
    def __init__(self) -> None:
        self.events: list[RemoteEvent] = []

    def __call__(self, event: RemoteEvent) -> None:
        self.events.append(event)

    def any(self, event: object) -> None:
        """A sink for a host session, which reports sync events too (kept alike)."""
        self.events.append(event)  # type: ignore[arg-type]

    def of(self, kind: type) -> list[RemoteEvent]:
        return [event for event in self.events if isinstance(event, kind)]

    def health(self) -> list[TunnelHealth]:
        return [e for e in self.events if isinstance(e, TunnelHealth)]

    async def wait_for(
        self, predicate: Callable[[RemoteEvent], bool], timeout: float, since: int = 0
    ) -> RemoteEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events[since:]:
                if predicate(event):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s; saw: {self.events[since:]}")


def make_session(
    config: LoadedConfig, paths: Paths, recorder: Recorder, forward: ForwardMode = "inline"
) -> Session:
    host = config.hosts["box"]
    return Session(
        host,
        target_for(host, config),
        paths,
        verifier=trust_all,
        on_event=recorder,
        probe_interval=0.5,
        probe_timeout=2.0,
        backoff=Backoff(base=0.2, cap=1.0),
        forward=forward,
    )


@pytest.fixture(params=["inline", "process"])
async def session(
    config: LoadedConfig, paths: Paths, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Session, Recorder]]:
    """Every session test runs twice: the tunnel on the session's loop (headless `nbterm up`),
    and in a forwarder process of its own (the cockpit)."""
    recorder = Recorder()
    session = make_session(config, paths, recorder, request.param)
    try:
        yield session, recorder
    finally:
        await session.down()


# --- host keys -------------------------------------------------------------------------------


async def test_an_unknown_key_is_not_stored_without_acceptance(
    config: LoadedConfig, paths: Paths, sshd: SshServer
) -> None:
    known = KnownHosts(paths.known_hosts)
    target = target_for(config.hosts["box"], config)
    asked: list[HostKeyQuestion] = []

    async def refuse(question: HostKeyQuestion) -> bool:
        asked.append(question)
        return False

    with pytest.raises(HostKeyRejectedError, match="was not trusted"):
        await connect(target, known, refuse)
    assert not known.knows("box")
    assert asked[0].sha256 == asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint()
    assert (asked[0].host, asked[0].alias, asked[0].port) == ("box", "box", sshd.port)

    with pytest.raises(HostKeyUnknownError, match="connect interactively once"):
        await connect(target, known, None)
    assert not known.knows("box")


async def test_an_accepted_key_is_stored_under_the_alias_and_checked_strictly(
    config: LoadedConfig, paths: Paths, sshd: SshServer
) -> None:
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    close_quietly(link)
    assert known.keys_for("box") == [sshd.host_key_pub]
    assert paths.known_hosts.read_text() == f"box {sshd.host_key_pub}\n"
    # now known: no question is asked again
    link = await connect(target_for(config.hosts["box"], config), known, None)
    close_quietly(link)


async def test_a_changed_key_is_refused_and_says_how_to_forget_it(
    config: LoadedConfig, paths: Paths
) -> None:
    known = KnownHosts(paths.known_hosts)
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    stored = " ".join(impostor.export_public_key("openssh").decode().split()[:2])
    known.add("box", stored)
    with pytest.raises(HostKeyChangedError) as caught:
        await connect(target_for(config.hosts["box"], config), known, trust_all)
    message = str(caught.value)
    assert "THE HOST KEY HAS CHANGED" in message
    assert impostor.get_fingerprint() in message
    assert "nbterm forget-host box" in message
    assert known.keys_for("box") == [stored]  # never replaced behind the user's back


# --- Jupyter and the tunnel --------------------------------------------------------------------


async def test_up_from_nothing_then_reattach(
    config: LoadedConfig, paths: Paths, sshd: SshServer
) -> None:
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    await jupyter.stop(link, config.hosts["box"].jupyter)
    close_quietly(link)

    first = Recorder()
    session = make_session(config, paths, first)
    result = await session.up()
    try:
        assert result.server.started
        assert first.of(HostKeyTrusted) == []  # already known from the connection above
        ready = first.of(JupyterReady)[0]
        assert isinstance(ready, JupyterReady)
        assert ready.started
        assert ready.root_dir == f"{sshd.home}/nbterm-test-notebooks"
        assert result.url == f"http://127.0.0.1:{result.local_port}/?token={result.server.token}"
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token)
        assert status["kernels"] == 0
        pid = result.server.pid
    finally:
        await session.down()

    second = Recorder()
    again = make_session(config, paths, second)
    started = time.perf_counter()
    result = await again.up()
    elapsed = time.perf_counter() - started
    try:
        assert not result.server.started
        assert result.server.pid == pid  # the same server: kernels would have survived
        assert elapsed < 2.0
    finally:
        await again.down()


async def test_the_token_is_required_and_everything_listens_on_loopback_only(
    session: tuple[Session, Recorder],
) -> None:
    sess, _ = session
    result = await sess.up()
    code, _ = await asyncio.to_thread(
        http_get, f"http://127.0.0.1:{result.local_port}/api/sessions"
    )
    assert code == 403
    code, _ = await asyncio.to_thread(
        http_get,
        f"http://127.0.0.1:{result.local_port}/api/sessions",
        {"Authorization": f"token {result.server.token}"},
    )
    assert code == 200
    assert listening_addresses(result.local_port) == {"127.0.0.1"}
    # and Jupyter itself, on the remote, answers on 127.0.0.1 only
    link = await sess.connection.get(5)
    _status, out, _ = await run(link, "cat /proc/net/tcp /proc/net/tcp6")
    port_hex = f":{result.server.port:04X}"
    listening = [  # state 0A is LISTEN; addresses are hex, 0100007F is 127.0.0.1
        line.split()[1]
        for line in out.splitlines()[1:]
        if len(line.split()) > 3 and line.split()[3] == "0A" and line.split()[1].endswith(port_hex)
    ]
    assert listening == [f"0100007F{port_hex}"]


async def test_a_taken_local_port_falls_back_and_says_so(
    session: tuple[Session, Recorder], config: LoadedConfig
) -> None:
    sess, recorder = session
    wanted = config.hosts["box"].jupyter.local_port
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT only
        blocker.bind(("127.0.0.1", wanted))
        blocker.listen()
        result = await sess.up()
        opened = recorder.of(TunnelOpened)[0]
        assert isinstance(opened, TunnelOpened)
        assert opened.fell_back
        assert (opened.wanted_port, opened.local_port) == (wanted, result.local_port)
        assert result.local_port != wanted
        assert f":{result.local_port}/" in result.url
        await asyncio.to_thread(api_status, result.local_port, result.server.token)


async def test_jupyter_missing_on_the_remote_is_a_clear_error(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    config = load_config(
        write_config(remote_config_text(sshd, command="/nonexistent/bin/jupyter lab"))
    )
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    settings = config.hosts["box"].jupyter
    settings = type(settings)(
        command=settings.command,
        remote_port=settings.remote_port + 1,
        local_port=settings.local_port,
        notebook_dir=settings.notebook_dir,
        tmux_session="nbterm-test-missing",
    )
    try:
        with pytest.raises(jupyter.JupyterError) as caught:
            await jupyter.ensure(link, settings)
    finally:
        close_quietly(link)
    message = str(caught.value)
    assert "'/nonexistent/bin/jupyter' was not found on the remote" in message
    assert "jupyter.command" in message


async def test_a_server_that_dies_at_start_shows_its_output_without_the_token(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    command = f"{sshd.remote_python.parent}/jupyter server --no-such-option-xyz"
    config = load_config(write_config(remote_config_text(sshd, command=command)))
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    base = config.hosts["box"].jupyter
    settings = type(base)(
        command=base.command,
        remote_port=base.remote_port + 2,
        local_port=base.local_port,
        notebook_dir=base.notebook_dir,
        tmux_session="nbterm-test-dies",
    )
    try:
        with pytest.raises(jupyter.JupyterError, match="exited as it started") as caught:
            await jupyter.ensure(link, settings, start_timeout=30)
    finally:
        close_quietly(link)
    assert "no-such-option-xyz" in str(caught.value)


# --- healing -----------------------------------------------------------------------------------


async def test_a_silent_link_is_reported_within_the_keepalive_bound_and_heals(
    session: tuple[Session, Recorder], sshd: SshServer
) -> None:
    sess, recorder = session
    result = await sess.up()
    await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.state == "up", 10)
    mark = len(recorder.events)
    bound = sess.target.dead_link_bound  # 1 s x (3 + 1)
    sshd.pause()
    paused = time.monotonic()
    try:
        await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state in ("reconnecting", "down"),
            bound + 3,
            since=mark,
        )
        noticed = time.monotonic() - paused
    finally:
        sshd.resume()
    assert noticed <= bound + 3
    mark = len(recorder.events)
    await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.state == "up", 20, mark)
    assert sess.connection.reconnects >= 1
    await asyncio.to_thread(api_status, result.local_port, result.server.token)


async def test_after_an_sshd_restart_the_tunnel_returns_on_the_same_port(
    session: tuple[Session, Recorder], sshd: SshServer
) -> None:
    sess, recorder = session
    result = await sess.up()
    await asyncio.to_thread(api_status, result.local_port, result.server.token)
    sshd.stop()  # the listener and every connection it served
    await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.state == "reconnecting", 10)
    # a request made while the link is down waits for the reconnect instead of being refused
    pending = asyncio.create_task(
        asyncio.to_thread(api_status, result.local_port, result.server.token, 20)
    )
    await asyncio.sleep(0.5)
    sshd.start()
    status = await asyncio.wait_for(pending, 25)
    assert "kernels" in status
    assert sess.forward.local_port == result.local_port
    mark = 0
    health = await recorder.wait_for(
        lambda e: isinstance(e, TunnelHealth) and e.state == "up" and e.reconnects >= 1, 15, mark
    )
    assert isinstance(health, TunnelHealth)
    assert health.local_port == result.local_port


# --- Jupyter supervised ------------------------------------------------------------------------


async def test_a_jupyter_that_dies_is_said_and_restarted_at_the_same_url(
    config: LoadedConfig, paths: Paths
) -> None:
    """Jupyter killed while the host is up: said at once with its last output, restarted,
    'kernels were lost' said, and the URL the user already has still works (the token is
    nbterm's, handed to Jupyter through a 0600 file, never on a command line)."""
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    await jupyter.stop(link, config.hosts["box"].jupyter)
    recorder = Recorder()
    session = make_session(config, paths, recorder)
    result = await session.up()
    try:
        assert result.server.token == session.token  # nbterm's own token, from its state
        _s, ps, _e = await run(link, "ps -eo args")
        assert session.token not in ps  # not on any command line of the remote
        kernel = await asyncio.to_thread(KernelClient, result.local_port, result.server.token)
        await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.kernels == 1, 10)
        mark = len(recorder.events)
        await run(link, f"kill -9 {result.server.pid}")
        await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "stopped" in e.message, 15, since=mark
        )
        restarted = await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "restarted Jupyter" in e.message, 30, since=mark
        )
        assert isinstance(restarted, Notice)
        assert "kernels were lost" in restarted.message
        assert "URL is unchanged" in restarted.message
        health = await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state == "up", 20, since=mark
        )
        assert isinstance(health, TunnelHealth)
        assert health.kernels_lost  # the Tunnels row says "up, kernels lost"
        assert session.server is not None and session.server.pid != result.server.pid
        status = await asyncio.to_thread(api_status, result.local_port, result.server.token)
        assert status["kernels"] == 0  # the old URL's token opens the new server
        assert session.jupyter_running
        # a kernel runs again: the row goes back to a plain "up"
        await asyncio.to_thread(kernel.close)
        kernel = await asyncio.to_thread(KernelClient, result.local_port, result.server.token)
        mark = len(recorder.events)
        health = await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.kernels == 1, 10, since=mark
        )
        assert isinstance(health, TunnelHealth)
        assert not health.kernels_lost
        await asyncio.to_thread(kernel.close)
    finally:
        await session.down()
        close_quietly(link)


async def test_a_restart_with_no_kernel_running_does_not_say_kernels_were_lost(
    config: LoadedConfig, paths: Paths
) -> None:
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    await jupyter.stop(link, config.hosts["box"].jupyter)  # a server of this test's own token
    recorder = Recorder()
    session = make_session(config, paths, recorder)
    result = await session.up()
    try:
        await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.kernels == 0, 10)
        mark = len(recorder.events)
        await run(link, f"kill -9 {result.server.pid}")
        restarted = await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "restarted Jupyter" in e.message, 30, since=mark
        )
        assert isinstance(restarted, Notice)
        assert "no kernel was running: nothing was lost" in restarted.message
        health = await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state == "up", 20, since=mark
        )
        assert isinstance(health, TunnelHealth)
        assert not health.kernels_lost
    finally:
        await session.down()
        close_quietly(link)


KERNEL_RUNS = 3


async def test_a_kernel_started_just_before_jupyter_died_is_said_lost(
    config: LoadedConfig, paths: Paths
) -> None:
    """Before: the loss was judged by the last probe (every 5 s), so a kernel started after it
    and killed with Jupyter was "no kernel was running: nothing was lost". Now the dead server's
    own connection files decide. Each of KERNEL_RUNS runs starts a kernel and kills Jupyter at
    once (well inside one probe period): every run must say the kernel was lost."""
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    await jupyter.stop(link, config.hosts["box"].jupyter)
    recorder = Recorder()
    host = config.hosts["box"]
    session = Session(host, target_for(host, config), paths, verifier=trust_all,
                      on_event=recorder, probe_interval=5.0)  # fmt: skip
    result = await session.up()
    said: list[str] = []
    try:
        for _run in range(KERNEL_RUNS):
            assert session.server is not None
            await recorder.wait_for(
                lambda e: isinstance(e, TunnelHealth) and e.state == "up" and e.kernels == 0, 20,
                since=len(recorder.events),
            )  # fmt: skip
            kernel = await asyncio.to_thread(KernelClient, result.local_port, session.token)
            mark = len(recorder.events)
            await run(link, f"kill -9 {session.server.pid}")
            restarted = await recorder.wait_for(
                lambda e: isinstance(e, Notice) and "restarted Jupyter" in e.message, 40,
                since=mark,
            )  # fmt: skip
            assert isinstance(restarted, Notice)
            said.append(restarted.message)
            with contextlib.suppress(Exception):
                kernel.ws.close()
    finally:
        await session.down()
        await jupyter.stop(link, config.hosts["box"].jupyter)
        close_quietly(link)
    lost = sum("kernels were lost" in message for message in said)
    assert lost == KERNEL_RUNS, said


async def test_a_jupyter_that_keeps_dying_is_given_up_and_said_so(
    config: LoadedConfig, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbterm.services.remote import session as session_module

    monkeypatch.setattr(session_module, "MAX_RESTARTS", 1)
    known = KnownHosts(paths.known_hosts)
    link = await connect(target_for(config.hosts["box"], config), known, trust_all)
    recorder = Recorder()
    session = make_session(config, paths, recorder)
    await session.up()
    try:
        for _round in range(2):
            assert session.server is not None
            mark = len(recorder.events)
            await run(link, f"kill -9 {session.server.pid}")
            await recorder.wait_for(
                lambda e: isinstance(e, Notice) and "stopped" in e.message, 20, since=mark
            )
            if _round == 0:
                await recorder.wait_for(
                    lambda e: isinstance(e, Notice) and "restarted" in e.message, 30, since=mark
                )
                after = len(recorder.events)
                await recorder.wait_for(
                    lambda e: isinstance(e, TunnelHealth) and e.state == "up", 30, since=after
                )
        gave_up = await recorder.wait_for(
            lambda e: isinstance(e, Notice) and "not restarting it again" in e.message, 20
        )
        assert isinstance(gave_up, Notice)
        assert not session.jupyter_running
        # `u` in the cockpit: Jupyter is started again, and then it is true that it runs
        down = [e for e in recorder.health() if e.state == "down"][-1]
        assert "not running" in down.message  # while it is not
        mark = len(recorder.events)
        await session.start_jupyter_again()
        assert session.jupyter_running and session.server is not None
        assert await jupyter.discover(link, config.hosts["box"].jupyter) is not None
        health = await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state == "up", 20, since=mark
        )
        assert isinstance(health, TunnelHealth)
    finally:
        await session.down()
        await jupyter.stop(link, config.hosts["box"].jupyter)
        close_quietly(link)
    closed = [e for e in recorder.health() if e.state == "down"][-1]
    assert "keeps running" in closed.message  # true when said: it was started again


# --- a server whose own config turned tokens off -------------------------------------------------


@pytest.mark.parametrize("auth", ["password", "none"])
async def test_a_server_without_a_token_is_shown_for_what_it_is(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths, auth: str
) -> None:
    """Its password is kept (the URL carries no token; the row says "up, needs password");
    with no password either, nbterm says plainly that anyone on the remote can use it."""
    flags = "--IdentityProvider.token="
    if auth == "password":  # Jupyter's salted-sha1 form (no "$" for the remote shell to expand)
        salt = "0123456789ab"
        digest = hashlib.sha1(b"s3cret" + salt.encode()).hexdigest()  # noqa: S324
        flags += f" --PasswordIdentityProvider.hashed_password=sha1:{salt}:{digest}"
    text = remote_config_text(sshd, command=f"{sshd.remote_python.parent}/jupyter server {flags}")
    text = text.replace(f'tmux_session = "{SESSION}"', f'tmux_session = "nbterm-test-{auth}"')
    text = text.replace(f"remote_port = {REMOTE_PORT}", f"remote_port = {REMOTE_PORT + 3}")
    config = load_config(write_config(text))
    recorder = Recorder()
    session = make_session(config, paths, recorder)
    try:
        result = await session.up()
        assert "token" not in result.url
        health = await recorder.wait_for(
            lambda e: isinstance(e, TunnelHealth) and e.state == "up", 15
        )
        assert isinstance(health, TunnelHealth)
        assert health.latency_ms is not None
        notices = " ".join(e.message for e in recorder.of(Notice) if isinstance(e, Notice))
        if auth == "password":
            assert session.auth == "password"
            assert health.needs_password
            assert health.kernels is None  # private: nbterm does not pretend to know
            assert "takes only its own password" in notices
            assert state_words(health) == "up, needs password"
            code, _ = await asyncio.to_thread(
                http_get, f"http://127.0.0.1:{result.local_port}/api/status"
            )
            assert code == 403  # the password is still the lock on the door
        else:
            assert session.auth == "none"
            assert not health.needs_password
            assert health.kernels == 0
            assert "WARNING: this Jupyter has no token and no password" in notices
    finally:
        await session.down()
        link = await connect(target_for(config.hosts["box"], config), KnownHosts(paths.known_hosts))
        try:
            await jupyter.stop(link, config.hosts["box"].jupyter)
        finally:
            close_quietly(link)
