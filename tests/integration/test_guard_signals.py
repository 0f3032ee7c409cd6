"""The guard judges the machine, not only Jupyter: a GPU job or a CPU-bound process beside an
idle Jupyter is work, on the loopback sshd (power-off injected, as in test_guard.py).

Before: "a busy kernel is never idle, otherwise Jupyter's last_activity": a training run in the
remote's tmux at 100% GPU was idle, and the machine powered off under it. The GPU is a stand-in
``nvidia-smi`` (the guard's ``gpu_command``) printing what the real one prints for
``--query-gpu`` in CSV, from a file the test rewrites. Invariant, sampled every 0.1 s over the
whole busy window: no power-off while any signal is busy; one soon after it ends; the reason the
guard gives names the signal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.presenters import guard_words
from nbterm.services.cloud import guard
from nbterm.services.host.down import Why
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote.events import RemoteEvent
from nbterm.services.remote.ssh import run
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import (
    guarded,
    never_powered_off,
    powered_off_within,
    settings_for,
)
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd

IDLE = "0, 0, 3, 24576\n1, 1, 3, 24576\n2, 0, 3, 24576\n3, 0, 3, 24576\n"
ONE_BUSY = "0, 0, 3, 24576\n1, 97, 20011, 24576\n2, 0, 3, 24576\n3, 0, 3, 24576\n"


async def test_a_busy_gpu_beside_an_idle_jupyter_keeps_the_machine_up(
    sshd: SshServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    marker, smi, csv = f"guard-marker-{tag}", f"fake-smi-{tag}", f"fake-smi-{tag}.csv"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-gpu") as (link, settings, _folder),
        guarded(link, marker),
    ):
        try:
            await run(link, f"printf %s '{ONE_BUSY}' > {csv} && printf '#!/bin/sh\\ncat "
                            f"\"$HOME\"/{csv}\\n' > {smi} && chmod +x {smi}")  # fmt: skip
            home = (await run(link, "echo $HOME"))[1].strip()
            armed = settings_for(settings, marker, gpu_command=f"{home}/{smi}")
            await guard.install(link, armed)  # idle 3 s + grace 1.2 s, lease 3 s
            samples = await never_powered_off(link, marker, 8.0)
            state = await guard.read_state(link)
            assert state is not None and state.busy and "GPU 1 97%" in state.reason, state
            await run(link, f"printf %s '{IDLE}' > {csv}")
            took = await powered_off_within(link, marker, 20)
            assert took >= 0.05 * 60 - 1.0  # idle counted from the end of the GPU's work
        finally:
            await run(link, f"rm -f {smi} {csv}; true")
    assert samples > 40


async def test_a_cpu_bound_process_beside_an_idle_jupyter_keeps_the_machine_up(
    sshd: SshServer, tmp_path: Path
) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-cpu") as (link, settings, _folder),
        guarded(link, marker),
    ):
        spin = "nohup timeout 9 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!"
        pid = (await run(link, spin))[1].strip()
        try:
            await guard.install(link, settings_for(settings, marker, gpu_command="/nonexistent"))
            samples = await never_powered_off(link, marker, 8.0)
            state = await guard.read_state(link)
            assert state is not None and state.busy and "CPU" in state.reason, state
            took = await powered_off_within(link, marker, 25)
            assert took > 1.0
        finally:
            await run(link, f"kill {pid} 2>/dev/null; true")
    assert samples > 40


async def test_the_laptops_idle_stop_asks_the_same_signals(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """An attached nbterm's own idle stop (3 s here) never stops a machine whose GPU works
    beside an idle Jupyter: it reads what the guard saw. Once the GPU is idle, it stops."""
    tag = uuid.uuid4().hex[:8]
    marker, smi, csv = f"guard-marker-{tag}", f"fake-smi-{tag}", f"fake-smi-{tag}.csv"
    config = load_config(write_config(remote_config_text(sshd, local_port=30857)))
    stopped: list[float] = []

    async def stop_instance(why: Why) -> None:
        stopped.append(time.monotonic())

    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-gpu-look") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        await run(link, f"printf %s '{ONE_BUSY}' > {csv} && printf '#!/bin/sh\\ncat "
                        f"\"$HOME\"/{csv}\\n' > {smi} && chmod +x {smi}")  # fmt: skip
        home = (await run(link, "echo $HOME"))[1].strip()
        settings = settings_for(config.hosts["box"].jupyter, marker, idle_minutes=60.0,
                                gpu_command=f"{home}/{smi}")  # fmt: skip
        events: list[RemoteEvent | SyncEvent] = []
        session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                              cloud=Cloud(guard=settings, idle_stop_minutes=0.05,
                                          stop_instance=stop_instance),
                              timings=Timings(lease_every=0.3, idle_check_every=0.25))  # fmt: skip
        try:
            await session.up()
            started = time.monotonic()
            while time.monotonic() - started < 8:
                assert not stopped, "the laptop's idle stop stopped a machine whose GPU works"
                await asyncio.sleep(0.1)
            await run(link, f"printf %s '{IDLE}' > {csv}")
            await asyncio.wait_for(session.ended.wait(), 30)
            assert stopped
        finally:
            await session.down(final_sync=False)
            await run(link, f"rm -f {smi} {csv}; true")


async def test_guard_extend_postpones_the_idle_stop_in_place(
    sshd: SshServer, tmp_path: Path
) -> None:
    """`nbterm guard extend`: idle past its limit (3 s) and no lease, nothing powers off
    before the time it was given (7 s, sampled every 0.1 s); then it does."""
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-extend") as (link, settings, _folder),
        guarded(link, marker),
    ):
        await guard.install(link, settings_for(settings, marker, gpu_command="/nonexistent"))
        assert await guard.extend(link, time.time() + 7)
        samples = await never_powered_off(link, marker, 6.0)
        state = await guard.read_state(link)
        assert state is not None and state.extended_until is not None
        assert "postponed until" in guard_words(state.report("box"))
        await powered_off_within(link, marker, 20)
    assert samples > 30
