"""The idle guard on the instance, against the loopback sshd and a real Jupyter.

The power-off is injected (the loopback "remote" is this machine): the guard's ``power_off``
appends a line to a marker file instead. Invariants, each checked over a whole window rather
than at one moment: the guard never powers off while a kernel is busy, never while an nbterm
renews its lease, and does power off once both have been false long enough. Minutes are
fractions here (``check_seconds`` 0.3) so that a case takes seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import guard
from nbterm.services.cloud.guard import parse_state
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote import jupyter
from nbterm.services.remote.events import GuardReport, RemoteEvent
from nbterm.services.remote.ssh import run
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import guarded, powered_off, settings_for
from tests.harness.kernel import KernelClient
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


async def test_no_power_off_while_a_kernel_is_busy_then_power_off_when_idle(
    sshd: SshServer, tmp_path: Path
) -> None:
    """A kernel computing for 8 s (printing nothing) with every other clock expired: 0 power-offs
    in that window (checked every 0.1 s); after it ends, one within idle + grace + checks."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with own_runtime(sshd, tmp_path, "nbterm-guard", remote_port=18993) as (
        link, settings, _folder,
    ):  # fmt: skip
        server = await jupyter.ensure(link, settings, token="guarded", start_timeout=60)
        try:
            kernel = await asyncio.to_thread(KernelClient, server.port, "guarded")
            computing = asyncio.create_task(
                asyncio.to_thread(kernel.execute, "import time; time.sleep(8)")
            )
            await asyncio.sleep(1.0)  # the kernel is busy now; Jupyter's own activity ages
            async with guarded(link, marker):
                said = await guard.install(link, settings_for(settings, marker))
                assert "idle guard armed" in said
                samples = 0
                while not computing.done():
                    assert not await powered_off(link, marker), "powered off with a busy kernel"
                    samples += 1
                    await asyncio.sleep(0.1)
                assert samples > 20
                done_at = time.monotonic()
                while not await powered_off(link, marker):
                    assert time.monotonic() - done_at < 20, "never powered off when idle"
                    await asyncio.sleep(0.1)
                state = await guard.read_state(link)
                assert state is not None and state.armed
                # the reason of its stop is kept on the disk, for the next nbterm to say
                assert state.last_stop_at is not None, state
                assert state.last_stop_why.startswith("idle for "), state.last_stop_why
                words = state.stopped_before(time.time() + 60)  # the next boot, a minute on
                assert words is not None and "the idle guard stopped this instance at" in words
                assert state.stopped_before(state.last_stop_at - 60) is None  # not this run's
                kernel.ws.close()
        finally:
            await jupyter.stop(link, settings)


async def test_an_attached_nbterm_holds_the_guard_off_and_its_lease_runs_out_after(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """A HostSession with the guard: while it is up (renewing every 0.3 s) Jupyter is idle far
    past the limit and nothing powers off (10 s, sampled every 0.1 s); the session reports the
    guard as armed and attached. After down, the lease runs out and the guard acts."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    config = load_config(write_config(remote_config_text(sshd, local_port=30557)))
    events: list[RemoteEvent | SyncEvent] = []
    settings = settings_for(config.hosts["box"].jupyter, marker, lease_minutes=0.03)
    session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                          cloud=Cloud(guard=settings),
                          timings=Timings(lease_every=0.3))  # fmt: skip
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-look") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        try:
            await session.up()
            for _ in range(100):
                assert not await powered_off(link, marker), "powered off with nbterm attached"
                await asyncio.sleep(0.1)
            reports = [e for e in events if isinstance(e, GuardReport)]
            assert reports, "the session never reported the guard"
            last = reports[-1]
            assert (last.armed, last.running, last.attached) == (True, True, True)
            assert last.idle_minutes is not None and last.idle_minutes > 0.07
        finally:
            await session.down(final_sync=False)
        gone_at = time.monotonic()
        while not await powered_off(link, marker):
            assert time.monotonic() - gone_at < 20, "the lease ran out and nothing happened"
            await asyncio.sleep(0.1)
        assert time.monotonic() - gone_at >= 0.03 * 60 - 0.5  # not before the lease ended


async def test_guard_off_sticks_until_guard_on(sshd: SshServer, tmp_path: Path) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-off") as (link, settings, _folder),
        guarded(link, marker),
    ):
        armed = settings_for(settings, marker, idle_minutes=60.0)
        assert "armed" in await guard.install(link, armed)
        assert await guard.turn_off(link)
        deadline = time.monotonic() + 5
        state = await guard.read_state(link)
        while state is not None and state.running and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            state = await guard.read_state(link)
        assert state is not None
        assert (state.armed, state.running, state.user_off) == (False, False, True)
        assert "OFF" in await guard.install(link, armed)  # `up` leaves it off
        state = await guard.read_state(link)
        assert state is not None and not state.running
        await guard.allow(link)
        assert "armed" in await guard.install(link, armed)
        await asyncio.sleep(1.0)
        state = await guard.read_state(link)
        assert state is not None and (state.armed, state.running) == (True, True)
        assert not await powered_off(link, marker)


async def test_installing_twice_runs_one_guard(sshd: SshServer, tmp_path: Path) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-twice") as (link, settings, _folder),
        guarded(link, marker),
    ):
        armed = settings_for(settings, marker, idle_minutes=60.0)
        for _ in range(3):
            await guard.install(link, armed)
        await asyncio.sleep(1.0)
        _status, out, _err = await run(
            link, "pgrep -u \"$(id -u)\" -f '^python3 guard[.]py config[.]json$' | wc -l"
        )
        assert out.strip() == "1"


async def test_right_after_arming_the_guard_is_said_to_run(sshd: SshServer, tmp_path: Path) -> None:
    """Before: the first report read the guard's state before it had written its pid, and
    said "armed but not running (the next up starts it)" of a guard that ran. RUNS times: the
    state read at once after arming says it runs."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    runs, running = 5, 0
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-first") as (link, settings, _folder),
        guarded(link, marker),
    ):
        for _ in range(runs):
            await guard.turn_off(link)
            await guard.allow(link)
            await asyncio.sleep(0.7)  # the old guard reads "off" and ends
            await guard.install(link, settings_for(settings, marker, idle_minutes=60.0))
            state = await guard.read_state(link)
            running += state is not None and state.running
    assert running == runs, f"{runs - running} of {runs} reads said the armed guard was not running"


def test_what_the_guard_writes_is_data() -> None:
    """state.json comes from the remote: wrong types, huge numbers and escapes read as unknown
    or as inert text, never as an error."""
    hostile = json.dumps({"idle_seconds": 1e308, "stop_at": "soon", "attached": "yes",
                          "failed": "\x1b]2;owned\x07" + "x" * 5000, "pid": [1]})  # fmt: skip
    state = parse_state('{"armed": true}', hostile, user_off=False, alive=True)
    assert state.armed and state.running
    assert state.idle_minutes is None and state.stop_at is None and not state.attached
    assert len(state.failed) == 300
    assert parse_state("not json", "{", user_off=False, alive=True).armed is False
    assert parse_state('{"armed": true}', "[]", user_off=True, alive=True).armed is False


async def test_max_hours_powers_off_even_while_a_kernel_is_busy(
    sshd: SshServer, tmp_path: Path
) -> None:
    """With only max_hours (no idle rule), the machine's uptime decides: this test machine has
    been up longer than 0.36 s, so once the lease runs out the guard powers off, busy or not."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-max", remote_port=18992) as (link, settings, _f),
        guarded(link, marker),
    ):
        server = await jupyter.ensure(link, settings, token="capped", start_timeout=60)
        try:
            kernel = await asyncio.to_thread(KernelClient, server.port, "capped")
            computing = asyncio.create_task(
                asyncio.to_thread(kernel.execute, "import time; time.sleep(8)")
            )
            await asyncio.sleep(0.5)
            capped = dataclasses.replace(
                settings_for(settings, marker), idle_minutes=None, max_hours=0.0001
            )
            said = await guard.install(link, capped)
            assert "0.0001 h of uptime" in said and "idle minutes" not in said
            installed = time.monotonic()
            while not await powered_off(link, marker):
                assert time.monotonic() - installed < 15, "max_hours never powered off"
                await asyncio.sleep(0.1)
            assert not computing.done()  # it powered off while the kernel was busy
            await computing
            kernel.ws.close()
        finally:
            await jupyter.stop(link, settings)


async def test_the_guard_runs_before_jupyter_so_a_killed_nbterm_leaves_it_guarded(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """Before: the guard was armed only once Jupyter ran, so an nbterm killed -9 while Jupyter
    was being started (or installed) left the instance it had started running unwatched. Now
    the guard runs as soon as SSH answers: with the up still waiting for a Jupyter that does not
    come, the guard already runs; the up is then abandoned without any goodbye (as a kill -9
    leaves it) and the guard powers the machine off once the lease has run out."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    slow = "sh -c 'sleep 120' sh"  # a Jupyter that never comes (its arguments land in $@)
    text = remote_config_text(sshd, local_port=30957, command=slow).replace(
        'tmux_session = "nbterm-test-jupyter"', 'tmux_session = "nbterm-guard-early"'
    )
    config = load_config(write_config(text))
    settings = settings_for(config.hosts["box"].jupyter, marker, lease_minutes=0.05)
    session = HostSession(config, "box", paths, verifier=trust_all, on_event=lambda e: None,
                          cloud=Cloud(guard=settings),
                          timings=Timings(lease_every=0.3))  # fmt: skip
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-early") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        up = asyncio.create_task(session.up())
        try:
            deadline = time.monotonic() + 20
            state = None
            while not (state is not None and state.running):
                assert time.monotonic() < deadline, "no guard while the up waited for Jupyter"
                assert not up.done(), "the up ended before the test could look"
                await asyncio.sleep(0.2)
                state = await guard.read_state(link)
        finally:
            up.cancel()  # nbterm gone: nothing renews the lease from now on
            await asyncio.gather(up, return_exceptions=True)
            for task in session._tasks:
                task.cancel()
            await asyncio.gather(*session._tasks, return_exceptions=True)
            await session.remote.connection.close()
        gone = time.monotonic()
        while not await powered_off(link, marker):
            assert time.monotonic() - gone < 20, "the guard never acted after nbterm was gone"
            await asyncio.sleep(0.1)
        # the slow start the up left behind: its tmux pane's process group, by its pid
        await run(link, "p=$(tmux list-panes -t =nbterm-guard-early -F '#{pane_pid}' "
                        '2>/dev/null); [ -n "$p" ] && kill -- -"$p" 2>/dev/null; '
                        "tmux kill-session -t =nbterm-guard-early 2>/dev/null; true")  # fmt: skip
