"""A host brought up whole: the remote session (Jupyter, tunnel) plus its sync rules.

``up()`` opens the remote session, then starts each sync rule (timer, remote watcher over the same
SSH connection). ``down()`` runs a bounded final sync first, then closes everything; Jupyter keeps
running on the remote. The EC2 layer adds starting and stopping the instance around this.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncssh

from nbterm.config import LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud import guard
from nbterm.services.cloud.guard import LEASE_EVERY, GuardSettings, GuardState
from nbterm.services.cloud.idle import IdlePolicy, IdleVerdict
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.laptop import this_laptop
from nbterm.services.cloud.lifecycle import Reach
from nbterm.services.cloud.spending import Spend
from nbterm.services.cloud.spot import IMDS, SpotNotice, SpotWatcher
from nbterm.services.host.down import RETRY_FIRST, SyncedHome, Why, sync_then_stop
from nbterm.services.remote import storage
from nbterm.services.remote.connection import Relocator
from nbterm.services.remote.events import (
    GuardDecisions,
    IdleStopping,
    IdleWarning,
    LimitStopping,
    LimitWarning,
    Notice,
    RemoteEvent,
    SpotInterruption,
)
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.gpu import GPU_EVERY, GpuSampler
from nbterm.services.remote.host_keys import Verifier
from nbterm.services.remote.probe import ProbeError, busy_kernels, get_status
from nbterm.services.remote.session import Session, UpResult
from nbterm.services.remote.ssh import Link
from nbterm.services.remote.ssh_config import end_master, write_ssh_config
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS, SyncEngine
from nbterm.services.sync.events import CycleDone, SyncEvent
from nbterm.services.sync.watcher import RemoteWatcher, WatchMode
from nbterm.services.tasks import cancel_and_wait, supervise

Sink = Callable[[RemoteEvent | SyncEvent], None]
WARN_AHEAD_SECONDS = 600.0
Outside = tuple[Literal["spot", "gone"], str]
"""What EC2 says from outside: a spot interruption, or a stop decided elsewhere (who did it)."""
OUTSIDE_LAST_SYNC = 30.0
"""The bound of the last sync after a stop decided elsewhere (the instance is shutting down)."""
"""How long before ``max_hours`` stops an instance the warning comes."""


@dataclass(frozen=True)
class FinalSyncResult:
    cycles: tuple[CycleDone, ...]

    @property
    def ok(self) -> bool:
        return all(cycle.ok for cycle in self.cycles)

    @property
    def files(self) -> int:
        return sum(len(cycle.files) for cycle in self.cycles)


@dataclass(frozen=True)
class Cloud:
    """What an EC2 instance adds to a host's session: the watches only an instance has, and
    what to do when they fire."""

    spot: bool = False
    """Watch the instance metadata for a spot interruption notice."""
    imds: str = IMDS
    idle_stop_minutes: float | None = None
    stop_instance: Callable[[Why], Awaitable[Instance | None]] | None = None
    outside_check: Callable[[], Awaitable[Outside | None]] | None = None
    """Asks EC2 about the instance: a spot interruption seen from outside (its state reason),
    a stop decided elsewhere (who stopped it), or None while it runs."""
    relocate: Relocator | None = None
    """Asked when reconnecting keeps failing: where the instance went, or that it is gone."""
    first_connect_wait: float = 0.0
    """Behind a jump host, the first connection is what waits for a booting instance."""
    guard: GuardSettings | None = None
    """Install the idle guard on the instance and renew its lease while up."""
    max_hours: float | None = None
    """Stop the instance after this much uptime (a warning first, then a final sync)."""
    launched_at: dt.datetime | None = None
    """When the instance last started (EC2's launch time): uptime counts from it."""
    final_sync_grace: float = 600.0
    """Seconds a limit's stop retries a failed final sync before it stops anyway."""
    on_guarded: Callable[[], None] = lambda: None
    """Heard once the guard is on the instance (the sentinel that covered the start ends)."""
    spend: Callable[[], Awaitable[Spend | None]] | None = None
    """Today's spending against the daily budget (headless: this session applies it to its
    own instance; the cockpit applies it to every instance, so it leaves this None)."""


@dataclass(frozen=True)
class Timings:
    """How often a session looks at things (tests shorten them)."""

    probe_interval: float = 5.0
    spot_every: float = 5.0
    idle_check_every: float = 60.0
    outside_every: float = 30.0
    io_timeout: int = 30
    """rsync's --timeout: a stalled transfer ends after this many seconds."""
    lease_every: float = LEASE_EVERY
    budget_every: float = 60.0
    gpu_every: float = GPU_EVERY
    retry_first: float = RETRY_FIRST
    """The first wait before a limit's stop tries a failed final sync again."""


class HostSession:
    def __init__(
        self,
        config: LoadedConfig,
        name: str,
        paths: Paths,
        *,
        verifier: Verifier | None,
        on_event: Sink,
        reach: Reach | None = None,
        cloud: Cloud | None = None,
        forward: ForwardMode = "inline",
        watch_mode: WatchMode = "auto",
        timings: Timings | None = None,
    ) -> None:
        """``reach``: where the host is now (by default, a plain SSH host as configured)."""
        self.config = config
        self.name = name
        self.paths = paths
        self.on_event = on_event
        self.watch_mode = watch_mode
        self.cloud = cloud or Cloud()
        self.timings = timings or Timings()
        self.ec2 = reach.addresses if reach is not None else {}
        self.remote = Session.for_host(
            config,
            name,
            paths,
            verifier=verifier,
            on_event=on_event,
            probe_interval=self.timings.probe_interval,
            target=reach.target if reach is not None else None,
            forward=forward,
            relocate=self.cloud.relocate,
            on_gone=self._gone,
            first_connect_wait=self.cloud.first_connect_wait,
        )
        self.engines: list[SyncEngine] = []
        minutes = self.cloud.idle_stop_minutes
        self.idle = IdlePolicy(minutes) if minutes else None
        self._interrupted = False
        self.ended = asyncio.Event()
        """Set when the session ends by itself (idle stop, or its instance stopped under it);
        ``reason`` says why."""
        self.reason = ""
        self.stopped_by_us = False
        """This session stopped its instance (a limit): Jupyter went with it."""
        self._tasks: list[asyncio.Task[None]] = []
        self.laptop = this_laptop(paths)
        """This nbterm, as the guard on the instance tells it from other laptops."""
        self._guard_state: GuardState | None = None
        self._decided_at = 0.0
        """The time of the guard's newest decision already handed on (GuardDecisions)."""
        self._said_rules_by = ""
        self._said_last_stop = False
        self._said_held: tuple[str, ...] = ()
        self._stopping = False
        """This session is stopping its instance (a limit): the outside watch keeps quiet."""
        self.stopped_elsewhere = False
        self._guard_armed = False
        if self.cloud.guard is not None:  # armed as soon as SSH answers, before Jupyter: an
            self.remote.on_connected = self._arm_early  # nbterm killed meanwhile leaves it guarded
        self.erased_by_a_stop: list[str] = []
        """Synced folders on the instance's instance store: never stopped without a sync."""
        """The instance was stopped under the session by someone else (said in ``reason``)."""

    async def up(self) -> UpResult:
        # first: rsync reads it, and so does the tunnel's OpenSSH master (its lane)
        ssh_config = write_ssh_config(self.config, self.paths, self.ec2)
        result = await self.remote.up()
        rules = self.config.sync_rules_for(self.name)
        if rules:
            for rule in rules:
                engine = SyncEngine(
                    rule, self.paths, ssh_config, self.on_event, io_timeout=self.timings.io_timeout
                )
                watcher = RemoteWatcher(
                    self._link,
                    rule.remote,
                    engine.remote_changed,
                    mode=self.watch_mode,
                    on_path=engine.remote_rewritten,
                )
                self.engines.append(engine)
                for kind, work in (("sync", engine.run), ("watch", watcher.run)):
                    supervised = supervise(f"{kind} {engine.label}", work, self._say)
                    self._tasks.append(asyncio.create_task(supervised, name=f"{kind}:{rule.host}"))
        if rules and self.cloud.stop_instance is not None:
            await self._find_instance_store([rule.remote for rule in rules])
        if self.cloud.spot:
            spot = SpotWatcher(
                self._link,
                self._on_spot_notice,
                imds=self.cloud.imds,
                every=self.timings.spot_every,
                on_problem=lambda message: self.on_event(Notice(self.name, message)),
            )
            self._keep("the spot-notice watch", spot.run)
        if self.idle is not None and self.remote.auth == "password":
            self._say(
                "idle stop is OFF for this session: this Jupyter takes only its password, so "
                "nbterm cannot read its activity. Stop the instance yourself when done."
            )
        elif self.idle is not None:
            self._keep("the idle watch", self._watch_idle)
        if self.cloud.guard is not None and not self._guard_armed:
            await self._arm_guard(self.cloud.guard)
        if self.cloud.max_hours is not None and self.cloud.launched_at is not None:
            hours, launched = self.cloud.max_hours, self.cloud.launched_at
            self._keep("the max_hours watch", lambda: self._watch_uptime(hours, launched))
        if self.cloud.spend is not None:
            self._keep("the budget watch", self._watch_budget)
        if self.cloud.outside_check is not None:
            self._keep("the spot watch from outside", self._watch_outside)
        command = self.cloud.guard.gpu_command if self.cloud.guard else None
        sampler = GpuSampler(self.name, self._link, self.on_event, command=command,
                             every=self.timings.gpu_every)  # fmt: skip
        self._keep("the GPU sampler", sampler.run)
        return result

    async def _find_instance_store(self, folders: list[str]) -> None:
        """Which synced folders a stop would erase (an instance store): said once; then no
        stop comes without a final sync that completed."""
        try:
            self.erased_by_a_stop = await storage.on_instance_store(await self._link(), folders)
        except (OSError, TimeoutError, asyncssh.Error):
            return
        if self.erased_by_a_stop:
            self._say(
                f"{', '.join(self.erased_by_a_stop)} is on the instance's instance store, which "
                "a stop erases: nbterm never stops this instance without a final sync that "
                "completed, a limit's stop neither"
            )

    async def _arm_early(self) -> None:
        if self.cloud.guard is not None and not self._guard_armed:
            await self._arm_guard(self.cloud.guard)

    async def _arm_guard(self, settings: GuardSettings) -> None:
        """Install the guard (a failure is said: the session goes on without it)."""
        self._guard_armed = True
        if not settings.laptop:
            settings = dataclasses.replace(settings, laptop=self.laptop.id, by=self.laptop.name)
        try:
            said = await guard.install(await self._link(), settings)
        except (guard.GuardError, OSError, TimeoutError, asyncssh.Error) as exc:
            self._say(f"the idle guard is NOT on the instance: {exc}")
            return
        self._say(said)
        try:  # the sentinel that covered the start ends only once the guard is seen running
            running = await guard.read_state(await self._link())
        except (OSError, TimeoutError, asyncssh.Error):
            running = None
        if running is not None and running.running:
            self.cloud.on_guarded()
        # restarted within a lease period whatever happens: the guard must never lose us
        self._keep("the guard's lease", self._keep_lease, max_delay=self.timings.lease_every)

    def _keep(
        self, what: str, work: Callable[[], Awaitable[None]], *, max_delay: float = 60.0
    ) -> None:
        """Run ``work`` for the session's life: an exception it did not expect is said, and the
        work started again (never a silent death: services/tasks.py)."""
        supervised = supervise(what, work, self._say, max_delay=max_delay)
        self._tasks.append(asyncio.create_task(supervised, name=f"{what}:{self.name}"))

    async def _keep_lease(self) -> None:
        """While attached: renew the guard's lease, and report what it says of itself. The
        lease comes first, and reading the guard's state (its files are the remote's to write)
        can never stop it."""
        while True:
            state = None
            try:
                link = await self._link()
                await guard.renew_lease(link, self.laptop.id, self.laptop.name)
                state = await guard.read_state(link)
            except (OSError, TimeoutError, asyncssh.Error):
                pass  # the link is down for a moment: the reconnect says so
            if state is not None:
                self._guard_state = state
                self.on_event(state.report(self.name))
                if state.decisions and state.decisions[-1].at != self._decided_at:
                    self._decided_at = state.decisions[-1].at
                    self.on_event(GuardDecisions(self.name, state.decisions))
                self._say_whose_rules(state)
                self._say_last_stop(state)
            await asyncio.sleep(self.timings.lease_every)

    def _say_last_stop(self, state: GuardState) -> None:
        """Why the instance was down before this run, when its guard stopped it: said once (the
        guard keeps its last stop on the instance's disk; EC2 only says "powered off inside")."""
        booted = self.cloud.launched_at
        if self._said_last_stop or booted is None:
            return
        self._said_last_stop = True
        words = state.stopped_before(booted.timestamp())
        if words:
            self._say(words)

    def _say_whose_rules(self, state: GuardState) -> None:
        """Another laptop's rules are the ones in force (they are more patient): said once."""
        by = state.rules_by
        if state.laptops > 1 and by and by != self.laptop.name and by != self._said_rules_by:
            self._said_rules_by = by
            self._say(
                f"the idle guard on the instance follows {by}'s rules, the most patient of the "
                f"{state.laptops} laptops that armed it: it never stops sooner than any of them "
                "asked"
            )

    def _guard_view(self) -> tuple[bool, float | None, str]:
        """What the guard on the instance saw at its last check, as last read: whether some
        signal was busy (or ``nbterm guard extend`` postponed idle stops), the latest activity
        it saw (a terminal, an SSH session's keystroke: epoch seconds), and its reason. The
        guard judges with :mod:`signals`, the one rule of both sides; nothing without a guard."""
        state = self._guard_state
        if state is None or not state.running:
            return False, None, ""
        extended = state.extended_until is not None and state.extended_until > time.time()
        return state.busy or extended, state.active_at, state.reason

    async def _fresh_guard_state(self) -> GuardState | None:
        """The guard's state as it says it at this moment (its last word when it cannot be
        asked now)."""
        try:
            state = await guard.read_state(await self._link())
        except (OSError, TimeoutError, asyncssh.Error):
            state = None
        if state is not None:
            self._guard_state = state
        return state or self._guard_state

    async def _others_attached(self) -> list[str]:
        """The other nbterms attached to this instance now (their guard leases are fresh)."""
        state = await self._fresh_guard_state()
        return [] if state is None else state.others_attached(self.laptop.id)

    @property
    def interrupted(self) -> bool:
        """A spot interruption was seen: a notice (from inside or outside), or the instance
        stopped by one under the session."""
        return self._interrupted or self.reason.endswith("(spot interruption)")

    def _say(self, message: str) -> None:
        self.on_event(Notice(self.name, message))

    def _gone(self, why: str) -> None:
        """The host went away under the session (its instance stopped): the session ends."""
        self.reason = why
        self.remote.machine_gone = why
        self.ended.set()

    async def _watch_outside(self) -> None:
        check = self.cloud.outside_check
        assert check is not None
        while not self._interrupted:
            await asyncio.sleep(self.timings.outside_every)
            if self._stopping:
                return  # this session stops it: nothing outside to report
            try:
                seen = await check()
            except Exception:  # noqa: BLE001, S112 - EC2 unreachable for a moment: ask again later
                continue
            if seen is None or self._stopping:
                continue
            kind, words = seen
            if kind == "spot":
                self._on_spot_notice(SpotNotice(words, ""))
                continue
            # stopped elsewhere (another laptop, the guard, the console): one last sync while
            # the connection may still work, then the session ends, saying who stopped it
            if self.engines:
                self._say(f"{words}: one last sync while the connection lasts")
                await self.final_sync(OUTSIDE_LAST_SYNC)
            self.stopped_elsewhere = True
            self._gone(words)
            return

    def _on_spot_notice(self, notice: SpotNotice) -> None:
        if self._interrupted:
            return  # seen from inside and from outside: one notice, one sync
        self._interrupted = True
        self.on_event(SpotInterruption(self.name, notice.action, notice.time))
        if self.engines:  # two minutes: sync everything now, bounded well inside them
            self._tasks.append(asyncio.create_task(self._sync_now_bounded(90.0)))

    async def _sync_now_bounded(self, timeout: float) -> None:
        await self.final_sync(timeout)

    async def _watch_idle(self) -> None:
        assert self.idle is not None
        while True:
            await asyncio.sleep(self.timings.idle_check_every)
            server, port = self.remote.server, self.remote.forward.local_port
            if server is None or not self.remote.forwarding or not self.remote.connection.connected:
                continue
            if self.remote.auth == "password":
                continue  # its activity is private: nothing to judge idleness by (said at up)
            try:
                status = await get_status(port, server.token, base_url=server.base_url)
                busy = await busy_kernels(port, server.token, base_url=server.base_url)
            except ProbeError:
                continue
            verdict, reason = self._idle_verdict(status.last_activity, busy)
            if verdict.state == "stop":  # the guard's word of this moment, not of a minute ago
                await self._fresh_guard_state()
                verdict, reason = self._idle_verdict(status.last_activity, busy)
            if verdict.state == "warn" and not self.idle.warned:
                self.idle.warned = True
                stop_in = self.idle.stop_after_minutes - verdict.idle_minutes
                self.on_event(
                    IdleWarning(self.name, verdict.idle_minutes, max(0.0, stop_in), reason)
                )
            elif verdict.state == "stop":
                others = tuple(await self._others_attached())
                if others:  # idle here, but someone else works on it: never stopped under them
                    if others != self._said_held:
                        self._said_held = others
                        self._say(
                            f"idle for {verdict.idle_minutes:.0f} min here, but "
                            f"{', '.join(others)} is attached to this instance: not stopping it"
                        )
                    continue
                self.on_event(IdleStopping(self.name, verdict.idle_minutes, reason))
                await self._limit_stop(
                    "idle", f"stopped after {verdict.idle_minutes:.0f} idle minutes"
                )
                return

    def _idle_verdict(
        self, last_activity: str | None, busy_kernels: int
    ) -> tuple[IdleVerdict, str]:
        """Jupyter's word (through the tunnel) and the guard's (every signal on the instance):
        idle only when both are, since the later of their last activities; the reason is the
        guard's, which saw everything (Jupyter's alone without a guard)."""
        assert self.idle is not None
        busy, active_at, reason = self._guard_view()
        verdict = self.idle.judge(last_activity, busy_kernels + busy, active_at=active_at)
        if not reason:
            reason = "idle: Jupyter idle (no guard on the instance sees its GPU, CPU or SSH)"
        return verdict, reason

    async def _watch_uptime(self, max_hours: float, launched_at: dt.datetime) -> None:
        """``max_hours``: a warning ahead of time, then a final sync and a stop, busy or not (a
        spending limit; the disk keeps whatever a failed final sync left on the instance)."""
        limit = max_hours * 3600
        ahead = min(WARN_AHEAD_SECONDS, limit / 4)
        why = f"up for {max_hours:g} h, its max_hours"

        def left() -> float:
            return limit - (dt.datetime.now(dt.UTC) - launched_at).total_seconds()

        if left() > ahead:
            await asyncio.sleep(left() - ahead)
        if left() > 0:
            self.on_event(LimitWarning(self.name, why, max(0.0, left()) / 60))
            await asyncio.sleep(max(0.0, left()))
        self.on_event(LimitStopping(self.name, why))
        await self._limit_stop("max_hours", f"stopped after {max_hours:g} h of uptime (max_hours)")

    async def _watch_budget(self) -> None:
        """Headless: the daily budget, applied to this session's own instance (a warning at
        80%, once; at 100%, a final sync and a stop, as the cockpit does for every instance)."""
        look = self.cloud.spend
        assert look is not None
        warned = False
        while True:
            try:
                spend = await look()
            except Exception as exc:  # noqa: BLE001 - EC2 unreachable for a moment: said, asked again
                self._say(f"could not read today's spending: {exc}")
                spend = None
            if spend is not None and spend.verdict == "warn" and not warned:
                warned = True
                self.on_event(LimitWarning(self.name, spend.words))
            if spend is not None and spend.verdict == "stop":
                words = spend.words
                self.on_event(LimitStopping(self.name, words))
                await self._limit_stop("budget", f"stopped: {words}")
                return
            await asyncio.sleep(self.timings.budget_every)

    async def _limit_stop(self, why: Why, reason: str) -> None:
        """A limit decided the stop: the final sync is retried for the grace period, then the
        instance stops anyway (the one rule in ``down.sync_then_stop``). The session ends."""

        async def sync() -> SyncedHome:
            if not self.engines:
                return SyncedHome("nothing to sync", "no [[sync]] rules")
            result = await self.final_sync()
            return SyncedHome("done") if result.ok else SyncedHome("failed")

        self._stopping = True

        async def stop() -> Instance | None:
            return await self.cloud.stop_instance(why) if self.cloud.stop_instance else None

        done = await sync_then_stop(
            why, sync=sync, stop=stop, note=self._say, grace=self.cloud.final_sync_grace,
            retry_first=self.timings.retry_first, erased_by_a_stop=self.erased_by_a_stop,
        )  # fmt: skip
        self.stopped_by_us = done.stopped
        if done.stopped:
            self.remote.machine_gone = "the instance is stopped"
        self.reason = reason if done.synced.ok else f"{reason}; {done.words}"
        self.ended.set()

    async def _link(self) -> Link:
        return await self.remote.connection.get(timeout=3600)

    def sync_now(self) -> None:
        for engine in self.engines:
            engine.request("now")

    async def final_sync(self, timeout: float = FINAL_SYNC_SECONDS) -> FinalSyncResult:
        """A last, bounded sync of every rule (each engine waits for a running cycle first)."""
        cycles = await asyncio.gather(*(engine.final_sync(timeout) for engine in self.engines))
        return FinalSyncResult(tuple(cycles))

    async def down(
        self, *, final_sync: bool = True, timeout: float = FINAL_SYNC_SECONDS
    ) -> FinalSyncResult:
        result = FinalSyncResult(())
        if final_sync and self.engines:
            result = await self.final_sync(timeout)
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.remote.down()
        if self.engines:
            await end_master(self.paths.ssh_config, self.name)
        return result
