"""Every stop of an instance, by a key, a command or a limit: the final sync first, then the stop.

Both faces and the session's watches call :func:`sync_then_stop`, so no place decides alone:

- a stop the person asked for (``d``, ``nbterm stop``, ``nbterm down``) whose final sync fails
  is refused: the instance keeps running and the words say how to stop it anyway;
- a stop a limit decided (the daily budget, ``max_hours``, idle) retries the final sync with
  back-off for ``[aws] final_sync_grace_minutes``, then stops anyway: stopping keeps the disk,
  and the next ``up`` brings the notebooks home. It says both.

The final sync goes over the session while one is open, and over a connection of its own
(:func:`sync_alone`) when none is: a cockpit just started, or a stop at start-up.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.ssh import SshError, close_quietly, connect
from nbterm.services.remote.ssh_config import end_master, write_ssh_config
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS, SyncEngine
from nbterm.services.sync.events import SyncEvent

Note = Callable[[str], None]
Why = Literal["asked", "budget", "max_hours", "idle"]
"""Who decided a stop: the person, or one of the limits."""
WHY_WORDS: dict[Why, str] = {
    "asked": "as asked",
    "budget": "the daily budget",
    "max_hours": "max_hours",
    "idle": "the idle stop",
}
STOP_TAG_WORDS: dict[Why, str] = {
    "asked": "asked to stop it",
    "budget": "the daily budget",
    "max_hours": "max_hours",
    "idle": "its idle stop",
}
"""Why, as another nbterm reads it: "stopped by alice@mbp (the daily budget)"."""
RETRY_FIRST = 15.0
RETRY_MAX = 120.0


@dataclass(frozen=True)
class SyncedHome:
    """How a final sync went, in the three cases a person must tell apart."""

    outcome: Literal["done", "nothing to sync", "failed"]
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"

    @property
    def words(self) -> str:
        if self.outcome == "failed":
            return "the final sync did NOT complete" + (f" ({self.detail})" if self.detail else "")
        if self.outcome == "nothing to sync":
            return "nothing to sync" + (f" ({self.detail})" if self.detail else "")
        return "final sync done"


Sync = Callable[[], Awaitable[SyncedHome]]


@dataclass(frozen=True)
class StopResult:
    stopped: bool
    synced: SyncedHome
    instance: Instance | None
    words: str
    """What happened, true now: said by the face as it is."""


async def sync_alone(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    verifier: Verifier | None,
    on_event: Callable[[SyncEvent], None],
    timeout: float = FINAL_SYNC_SECONDS,
    ec2: Ec2 | None = None,
    console_keys: bool = True,
) -> SyncedHome:
    """A bounded final sync of the host's rules over a connection of its own (no session is
    open): rsync's OpenSSH checks host keys strictly, so a new key is checked (and stored)
    first: an instance's against its console (unless ``console_keys`` is off), then
    ``verifier``, the face's question."""
    from nbterm.services.host.up import key_check, reach_running  # up imports this module

    rules = config.sync_rules_for(host.name)
    if not rules:
        return SyncedHome("nothing to sync", "no [[sync]] rules")
    try:
        where = await reach_running(config, host, ec2)
    except Ec2Error as exc:
        return SyncedHome("failed", str(exc))
    if where is None:
        return SyncedHome("nothing to sync", "the instance is not running")
    known = KnownHosts(paths.known_hosts)
    if not known.knows(where.target.alias):
        check = key_check(config, where, verifier, console_keys=console_keys, ec2=ec2)
        try:
            close_quietly(await connect(where.target, known, check))
        except SshError as exc:
            return SyncedHome("failed", str(exc))
    ssh_config = write_ssh_config(config, paths, where.addresses)
    try:
        cycles = [
            await SyncEngine(rule, paths, ssh_config, on_event, retries=False).final_sync(timeout)
            for rule in rules
        ]
    finally:
        await end_master(ssh_config, host.name)
    if all(cycle.ok and not cycle.pending for cycle in cycles):
        return SyncedHome("done")
    waiting = sum(len(cycle.pending) for cycle in cycles)
    return SyncedHome("failed", f"{waiting} file(s) not home" if waiting else "see the sync log")


async def sync_then_stop(
    why: Why,
    *,
    sync: Sync,
    stop: Callable[[], Awaitable[Instance | None]],
    note: Note,
    grace: float,
    before_stop: Callable[[], Awaitable[object]] | None = None,
    retry_first: float = RETRY_FIRST,
    erased_by_a_stop: list[str] | None = None,
) -> StopResult:
    """The one rule for every stop: sync, then stop, as the module says.

    ``grace``: seconds a limit's stop keeps retrying a failed final sync before it stops
    anyway. ``before_stop``: closes the session (its tunnel) once the sync is over.
    ``erased_by_a_stop``: synced folders on an instance store (a stop erases them): then no
    stop ever comes without a final sync that completed, a limit's neither."""
    synced = await sync()
    if not synced.ok and why == "asked":
        return StopResult(False, synced, None, f"{synced.words}: the instance was NOT stopped")
    never_without = bool(erased_by_a_stop)
    deadline = time.monotonic() + grace
    wait = retry_first
    while not synced.ok and time.monotonic() + wait <= deadline:
        left = (deadline - time.monotonic()) / 60
        note(f"{synced.words}; trying again in {wait:.0f}s ({WHY_WORDS[why]} stops the "
             f"instance anyway in {left:.0f} min: its disk keeps the notebooks)")  # fmt: skip
        await asyncio.sleep(wait)
        wait = min(wait * 2, RETRY_MAX)
        synced = await sync()
    if not synced.ok and never_without:
        folders = ", ".join(erased_by_a_stop or ())
        return StopResult(False, synced, None, (
            f"{synced.words}: the instance was NOT stopped ({WHY_WORDS[why]}): {folders} is on "
            "its instance store, which a stop erases; it keeps running and costing until the "
            "notebooks are home (or `nbterm stop NAME --force`)"
        ))  # fmt: skip
    if not synced.ok:
        note(f"{synced.words}; stopping anyway ({WHY_WORDS[why]}): the instance's disk keeps "
             "the notebooks, and the next up brings them home")  # fmt: skip
    if before_stop is not None:
        await before_stop()
    instance = await stop()
    state = instance.state if instance is not None else "stopped"
    words = f"{instance.id if instance else 'the instance'} is {state} (its disk is kept)"
    if why != "asked":
        words += f", by {WHY_WORDS[why]}"
    if not synced.ok:
        words += "; the final sync did NOT complete: the next up brings the notebooks home"
    return StopResult(True, synced, instance, words)


def ec2_stop(
    config: LoadedConfig, paths: Paths, host: Host, note: Note, why: Why = "asked"
) -> Callable[[], Awaitable[Instance]]:
    """Stopping the host's instance (forgetting its address, saying who stops it), in a
    thread."""

    async def stop() -> Instance:
        call = functools.partial(lifecycle.stop, paths=paths, why=STOP_TAG_WORDS[why])
        return await asyncio.to_thread(call, Ec2(config.aws), host, note=note)

    return stop


def grace_seconds(config: LoadedConfig) -> float:
    return config.aws.final_sync_grace_minutes * 60.0
