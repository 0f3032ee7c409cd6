"""Two laptops on one instance: two leases and two sets of rules on one guard, against the
loopback sshd (the power-off is injected: a marker file, as in test_guard.py).

Before: the second laptop's ``up`` rewrote the guard's rules (idle 30 min became 1 min) and
nobody was told; laptop B's idle stop stopped the instance while laptop A was attached.
Invariants: the guard never powers off sooner than the most patient laptop asked (sampled every
0.1 s), and a laptop-side idle stop never stops an instance another nbterm holds a fresh lease
on (sampled over the whole window); once that lease has run out, the stop happens.
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
from nbterm.services.cloud import guard
from nbterm.services.cloud.laptop import this_laptop
from nbterm.services.host.down import Why
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote.events import IdleStopping, Notice, RemoteEvent
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import another_laptop, guarded, powered_off, settings_for
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


async def test_the_most_patient_laptops_rules_win_and_are_said(
    sshd: SshServer, paths: Paths, tmp_path: Path
) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    alice = this_laptop(another_laptop(paths, tmp_path, "alice"))
    bob = this_laptop(another_laptop(paths, tmp_path, "bob"))
    async with (
        own_runtime(sshd, tmp_path, "nbterm-two-laptops") as (link, settings, _folder),
        guarded(link, marker),
    ):
        patient = settings_for(settings, marker, idle_minutes=0.2, laptop=alice.id, by="alice")
        hasty = settings_for(settings, marker, idle_minutes=0.03, laptop=bob.id, by="bob")
        await guard.install(link, patient)  # alice: 13 s of idleness
        await guard.install(link, hasty)  # then bob: 3 s, which used to replace alice's
        installed = time.monotonic()
        await asyncio.sleep(1.0)  # a check or two: both laptops' rules are in force
        state = await guard.read_state(link)
        assert state is not None and (state.rules_by, state.laptops) == ("alice", 2)
        while time.monotonic() - installed < 9:
            assert not await powered_off(link, marker), (
                f"powered off after {time.monotonic() - installed:.1f}s: bob's rules, not alice's"
            )
            await asyncio.sleep(0.1)
        state = await guard.read_state(link)  # bob has been gone longer than his rules ask
        assert state is not None and (state.rules_by, state.laptops) == ("alice", 1)
        while not await powered_off(link, marker):
            assert time.monotonic() - installed < 30, "alice's rules never powered off"
            await asyncio.sleep(0.1)


async def test_an_idle_stop_never_stops_an_instance_another_laptop_is_attached_to(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    config = load_config(write_config(remote_config_text(sshd, local_port=30757)))
    settings = settings_for(config.hosts["box"].jupyter, marker, idle_minutes=60.0,
                            lease_minutes=0.05)  # fmt: skip
    events_a: list[RemoteEvent | SyncEvent] = []
    events_b: list[RemoteEvent | SyncEvent] = []
    stopped: list[float] = []

    async def stop_instance(why: Why) -> None:
        stopped.append(time.monotonic())

    timings = Timings(lease_every=0.3, idle_check_every=0.25)
    paths_a, paths_b = (another_laptop(paths, tmp_path, name) for name in ("alice", "bob"))
    alice = HostSession(config, "box", paths_a, verifier=trust_all,
                        on_event=events_a.append, cloud=Cloud(guard=settings),
                        timings=timings)  # fmt: skip
    bob = HostSession(config, "box", paths_b, verifier=trust_all,
                      on_event=events_b.append,
                      cloud=Cloud(guard=settings, idle_stop_minutes=0.05,
                                  stop_instance=stop_instance),
                      timings=timings)  # fmt: skip
    async with (
        own_runtime(sshd, tmp_path, "nbterm-two-look") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        try:
            await alice.up()
            await bob.up()
            started = time.monotonic()
            while time.monotonic() - started < 8:  # bob's limit (3 s) passes meanwhile
                assert not stopped, "bob's idle stop stopped the instance alice is attached to"
                await asyncio.sleep(0.1)
            said = [e.message for e in events_b if isinstance(e, Notice)]
            assert any("alice is attached to this instance: not stopping it" in m
                       for m in said), said  # fmt: skip
            await alice.down(final_sync=False)
            gone = time.monotonic()
            await asyncio.wait_for(bob.ended.wait(), 30)
            assert stopped and stopped[0] - gone >= 0.05 * 60 - 0.5  # after alice's lease ran out
            assert any(isinstance(e, IdleStopping) for e in events_b)
        finally:
            await alice.down(final_sync=False)
            await bob.down(final_sync=False)
