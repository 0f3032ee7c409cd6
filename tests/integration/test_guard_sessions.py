"""A person's SSH session and Jupyter terminals are signals of their own, on the loopback sshd
(power-off injected, as in test_guard.py).

Before: the guard judged Jupyter (and the GPU, the CPU) only; a person typing in an SSH session
beside an idle Jupyter was idle, and the machine powered off under them. The session here is
OpenSSH's own client with a terminal (``ssh -tt``), typed in once a second. A terminal's access
time moves in steps of 8 s (the kernel hides finer timing), so the idle limits here are longer
than in the other guard tests. Invariants, sampled every 0.1 s over the whole window: no
power-off while a person types; one soon after they stop, though the session stays open (an
open session nobody uses must not keep a machine up for ever); the reasons name the signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import websocket

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.presenters import signal_lines
from nbterm.services.cloud import guard
from nbterm.services.host.down import Why
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote import jupyter
from nbterm.services.remote.events import IdleStopping, RemoteEvent
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import (
    guarded,
    never_powered_off,
    powered_off,
    powered_off_within,
    settings_for,
)
from tests.harness.procs import end_process
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd

IDLE_MINUTES = 0.2
"""12 s: beyond the 8 s steps of a terminal's access time."""


@contextlib.asynccontextmanager
async def typing_session(sshd: SshServer) -> AsyncIterator[Callable[[bool], None]]:
    """An interactive SSH session (a terminal on the remote, as a person's ``ssh`` opens it);
    yields a switch: True types a line into it every second, False stops typing (the session
    stays open). Ended by its pid."""
    proc = subprocess.Popen(
        ["ssh", "-tt", *sshd.openssh_args()],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdin is not None
    typing = {"on": True}

    async def keys() -> None:
        while True:
            if typing["on"]:
                proc.stdin.write(b"true\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            await asyncio.sleep(1.0)

    task = asyncio.create_task(keys())
    try:
        yield lambda on: typing.__setitem__("on", on)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        end_process(proc)


async def test_typing_in_an_ssh_session_keeps_the_machine_up_an_unused_one_does_not(
    sshd: SshServer, tmp_path: Path
) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-ssh") as (link, settings, _folder),
        guarded(link, marker),
        typing_session(sshd) as typing,
    ):
        armed = settings_for(settings, marker, idle_minutes=IDLE_MINUTES,
                             gpu_command="/nonexistent", cpu_busy_cores=8.0)  # fmt: skip
        await guard.install(link, armed)
        samples = await never_powered_off(link, marker, 2 * 60 * IDLE_MINUTES, "typing")
        state = await guard.read_state(link)
        assert state is not None and not state.busy, state
        ssh = [item for item in state.signals if item.name.startswith("SSH pts/")]
        assert ssh and "typed in" in ssh[0].value, state.signals
        assert any(line.startswith("SSH pts/") for line in signal_lines(state.signals))
        assert state.idle_minutes is not None and state.idle_minutes < IDLE_MINUTES, state
        typing(False)  # the session stays open, unused
        took = await powered_off_within(link, marker, 60 * IDLE_MINUTES + 8 + 15)
        assert took > 60 * IDLE_MINUTES - 8 - 1  # counted from the last keystroke it could see
        state = await guard.read_state(link)
        assert state is not None
        assert "SSH pts/" in state.last_stop_why, state.last_stop_why
    assert samples > 100


async def test_the_laptops_idle_stop_waits_for_a_person_typing_over_ssh(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """An attached nbterm's own idle stop (12 s) never stops a machine a person types on over
    SSH beside an idle Jupyter (it reads the guard's signals); once they stop typing, it stops
    it, saying what each signal saw."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    config = load_config(write_config(remote_config_text(sshd, local_port=30859)))
    stopped: list[float] = []

    async def stop_instance(why: Why) -> None:
        stopped.append(time.monotonic())

    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-ssh-look") as (link, _settings, _folder),
        guarded(link, marker),
        typing_session(sshd) as typing,
    ):
        settings = settings_for(config.hosts["box"].jupyter, marker, idle_minutes=60.0,
                                gpu_command="/nonexistent", cpu_busy_cores=8.0)  # fmt: skip
        events: list[RemoteEvent | SyncEvent] = []
        session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                              cloud=Cloud(guard=settings, idle_stop_minutes=IDLE_MINUTES,
                                          stop_instance=stop_instance),
                              timings=Timings(lease_every=0.3, idle_check_every=0.25))  # fmt: skip
        try:
            await session.up()
            started = time.monotonic()
            while time.monotonic() - started < 2 * 60 * IDLE_MINUTES:
                assert not stopped, "the laptop's idle stop stopped a machine a person types on"
                await asyncio.sleep(0.1)
            typing(False)
            await asyncio.wait_for(session.ended.wait(), 60 * IDLE_MINUTES + 30)
            assert stopped
            said = [event for event in events if isinstance(event, IdleStopping)]
            assert said and "SSH pts/" in said[0].reason, said
        finally:
            await session.down(final_sync=False)


async def test_a_jupyter_terminal_in_use_is_named_in_the_reasons(
    sshd: SshServer, tmp_path: Path
) -> None:
    """Jupyter counts a terminal's use in its own last activity; the guard names the terminal,
    so a person reads which one keeps the machine up, and it stops once nobody uses it."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with own_runtime(sshd, tmp_path, "nbterm-guard-term", remote_port=18994) as (
        link, settings, _folder,
    ):  # fmt: skip
        server = await jupyter.ensure(link, settings, token="termed", start_timeout=60)
        base = f"127.0.0.1:{server.port}"
        try:
            created = await asyncio.to_thread(_post, f"http://{base}/api/terminals", "termed")
            name = json.loads(created)["name"]
            ws = await asyncio.to_thread(
                websocket.create_connection, f"ws://{base}/terminals/websocket/{name}",
                header=["Authorization: token termed"],
            )  # fmt: skip
            async with guarded(link, marker):
                await guard.install(link, settings_for(settings, marker, gpu_command="/none",
                                                       cpu_busy_cores=8.0))  # fmt: skip
                samples, started = 0, time.monotonic()
                while time.monotonic() - started < 8:
                    await asyncio.to_thread(ws.send, json.dumps(["stdin", "true\r"]))
                    for _ in range(5):
                        assert not await powered_off(link, marker), "powered off while typed in"
                        samples += 1
                        await asyncio.sleep(0.1)
                state = await guard.read_state(link)
                assert state is not None
                terminal = [item for item in state.signals if item.name == f"terminal {name}"]
                assert terminal and terminal[0].value in ("used just now",), state.signals
                ws.close()
                await powered_off_within(link, marker, 25)
                assert samples > 50
        finally:
            await jupyter.stop(link, settings)


def _post(url: str, token: str) -> str:
    import urllib.request

    request = urllib.request.Request(url, data=b"{}", method="POST")
    request.add_header("Authorization", f"token {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        data: bytes = answer.read()
    return data.decode()
