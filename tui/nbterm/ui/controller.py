"""The running hosts of the cockpit: one HostSession per host, driven from Textual workers.

Each host's work runs in its own worker group (``host:NAME``), so cancelling one host never
touches another. Services report through their callbacks; here those become messages posted to
the screen. No widget is touched from here, and no widget does I/O: what needs a person (the
host-key question) is a callable the screen hands over with :meth:`Controller.attach`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbterm.config import LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote import registry
from nbterm.services.remote.events import RemoteEvent
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.sync.events import SyncEvent
from nbterm.ui.messages import HostNote, HostState, HostStatus, InstancesRefreshed, ServiceEvent

# boto3 and asyncssh are imported where a host is first acted on, not when the cockpit starts
if TYPE_CHECKING:
    from textual.app import App
    from textual.message_pump import MessagePump

    from nbterm.config.schema import TemplateConfig
    from nbterm.services.host.down import SyncedHome, Why
    from nbterm.services.host.sentinel import Sentinel
    from nbterm.services.host.session import HostSession
    from nbterm.services.remote.session import OpenForward


Confirm = Callable[[str], Awaitable[bool]]
"""A yes/no question to the person (the screen shows it)."""


@dataclass
class Running:
    session: HostSession
    url: str = ""
    local_port: int = 0
    instance: Instance | None = None
    closing: bool = field(default=False)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once ``d``, ``t`` or quit closed it here: its up worker ends (the closer says how)."""


class Controller:
    def __init__(self, app: App[None], config: LoadedConfig, paths: Paths) -> None:
        self.app = app
        self.config = config
        self.paths = paths
        self.running: dict[str, Running] = {}
        self.target: MessagePump = app
        """Where messages go: the main screen, once it is mounted (set by the screen)."""
        self.ask: Verifier | None = None
        """The screen's question about a new host key (None: a new key is refused)."""
        self.confirm: Confirm | None = None
        self.waiting: dict[str, asyncio.Event] = {}
        """Hosts waiting for spot capacity to come back; setting the event stops the wait."""
        self.capacity_every = 30.0
        """How often EC2 is asked while waiting (tests shorten it)."""
        self.coming_up: set[str] = set()
        """Hosts whose up runs now (its worker is never replaced by a second one)."""
        self.launched: dict[str, Sentinel] = {}
        """Instances launched here and not yet up: their sentinels, for the up that follows."""

    def attach(self, target: MessagePump, ask: Verifier, confirm: Confirm | None = None) -> None:
        """The screen that shows what happens, its way to ask about a new host key, and its
        yes/no question (installing Jupyter on a host that has none)."""
        self.target = target
        self.ask = ask
        self.confirm = confirm

    # --- events out ----------------------------------------------------------------------------

    def _post(self, event: RemoteEvent | SyncEvent) -> None:
        self.target.post_message(ServiceEvent(event))  # thread-safe

    def _status(self, host: str, status: HostState, detail: str = "") -> None:
        self.target.post_message(HostStatus(host, status, detail))

    def _note(self, host: str, text: str) -> None:
        self.target.post_message(HostNote(host, text))  # thread-safe

    # --- up and down (run inside a worker of group host:NAME) -----------------------------------

    async def up(self, name: str) -> None:
        """Bring the host up; after a spot interruption, wait for capacity and go up again."""
        if name in self.running:
            running = self.running[name]
            remote = running.session.remote
            if remote.gave_up:  # "up" would be false: its Jupyter is not running
                self._status(name, "starting", "Jupyter is not running (nbterm had stopped "
                                               "restarting it): starting it again")  # fmt: skip
                try:
                    await remote.start_jupyter_again()
                except Exception as exc:  # noqa: BLE001 - said; the tunnel stays as it was
                    self._status(name, "failed", f"Jupyter did not start: {exc}")
                    return
                if remote.server is not None:
                    running.url = remote.server.local_url(running.local_port)
            self._status(name, "up", running.url)
            return
        if name in self.coming_up:  # a second u (or one after a launch) never restarts it
            self._note(name, f"{name} is already coming up")
            return
        self.coming_up.add(name)
        try:
            await self._up(name)
        finally:
            self.coming_up.discard(name)

    async def _up(self, name: str) -> None:
        from nbterm.services.cloud.ec2 import Ec2
        from nbterm.services.cloud.recovery import after_interruption
        from nbterm.services.host.up import Face, open_host

        while True:
            self._status(name, "starting")
            face = Face(
                ask=self.ask,
                on_event=self._post,
                note=lambda message: self._status(name, "starting", message),  # thread-safe
                forward="process",  # drawing the screen must never delay a forwarded packet
                install=self.confirm,
            )
            launched = self.launched.pop(name, None)  # its sentinel: this up owns it now
            opened = await open_host(self.config, self.paths, name, face, launched=launched)
            session, result = opened.session, opened.result
            self.running[name] = Running(session, result.url, result.local_port, opened.instance)
            registry.record_cockpit(self.paths, name, result.local_port, result.server.port)
            self._status(name, "up", result.url)
            await self._open_on_up(name, result.forwards)
            running = self.running[name]
            if not await _first(session.ended, running.closed):
                return  # closed here (d, t, quit): nothing more for this up to do
            await self._close(name, final_sync=False)  # an idle stop, or stopped under it
            if opened.instance is None:
                self._status(name, "down", session.reason)
                return
            stop_waiting = self.waiting[name] = asyncio.Event()
            waiting = functools.partial(
                self._status, name, "waiting",
                f"{session.reason}: nbterm brings it up again when AWS starts it (d stops waiting)",
            )  # fmt: skip
            try:
                back = await after_interruption(
                    Ec2(self.config.aws), opened.instance.id, stopped=stop_waiting,
                    every=self.capacity_every, note=lambda text: self._note(name, text),
                    waiting=waiting, interrupted=session.interrupted,
                )  # fmt: skip
            finally:
                self.waiting.pop(name, None)
            if back is None:
                self._status(name, "down", session.reason)
                return
            self._note(name, f"capacity is back: {back.id} runs again; bringing {name} up "
                             "again (same local port and URL)")  # fmt: skip

    async def _open_on_up(self, name: str, forwards: tuple[OpenForward, ...]) -> None:
        """Each of the host's ports with ``open_on_up``, in the browser, once it is up."""
        from nbterm.browser import open_private

        for forward in forwards:
            self._note(name, f"{forward.name}: {forward.url}")
            if forward.open_on_up:
                opened = await asyncio.to_thread(
                    open_private, self.paths, f"{name}-{forward.name}", forward.url
                )
                if not opened:
                    self._note(name, f"{forward.name}: no browser found to open it")

    async def _close(self, name: str, *, final_sync: bool) -> bool:
        running = self.running.pop(name, None)
        if running is None:
            return True
        running.closing = True
        from nbterm.services.host.up import FINAL_SYNC_SECONDS

        try:
            result = await running.session.down(final_sync=final_sync, timeout=FINAL_SYNC_SECONDS)
        finally:
            registry.drop_cockpit(self.paths, name)
            running.closed.set()
        return result.ok

    async def _final_sync(self, name: str) -> SyncedHome:
        """The final sync before a stop: over the session while it is up, else over a
        connection of its own (the cockpit was just started, or the host is not up here)."""
        from nbterm.services.host.down import SyncedHome, sync_alone

        running = self.running.get(name)
        if running is not None:
            if not running.session.engines:
                return SyncedHome("nothing to sync", "no [[sync]] rules")
            result = await running.session.final_sync()
            return SyncedHome("done" if result.ok else "failed")
        self._status(name, "closing", "final sync over a connection of its own")
        return await sync_alone(
            self.config, self.paths, self.config.hosts[name], verifier=self.ask,
            on_event=self._post,
        )  # fmt: skip

    async def down(self, name: str, *, stop_instance: bool, why: Why = "asked") -> None:
        """Final sync, close the tunnel; for EC2 with ``stop_instance``, stop it: refused if
        the sync failed and the person asked, retried then stopped anyway if a limit did."""
        from nbterm.services.host.down import ec2_stop, grace_seconds, sync_then_stop

        waiting = self.waiting.get(name)
        if waiting is not None:
            waiting.set()  # d while waiting for capacity: stop waiting, and stop it as asked
        host = self.config.hosts[name]
        running = self.running.get(name)
        self._status(name, "closing", "final sync")
        if not (host.is_ec2 and stop_instance):
            jupyter_runs = running is None or running.session.remote.jupyter_running
            await self._close(name, final_sync=True)
            where = "keeps running" if jupyter_runs else "is NOT running"
            self._status(name, "down", f"tunnel closed; Jupyter {where} on the remote")
            return

        def note(text: str) -> None:
            self._status(name, "closing", text)

        done = await sync_then_stop(
            why, sync=functools.partial(self._final_sync, name),
            stop=ec2_stop(self.config, self.paths, host, note, why), note=note,
            grace=grace_seconds(self.config),
            before_stop=functools.partial(self._close, name, final_sync=False),
            erased_by_a_stop=running.session.erased_by_a_stop if running else None,
        )  # fmt: skip
        if not done.stopped:
            self._status(name, "failed", f"{done.words} (t stops nothing either; `nbterm stop "
                                         f"{name} --force` stops it anyway)")  # fmt: skip
            if name in self.running:  # the session stays up: nothing was closed
                self._status(name, "up", self.running[name].url)
            return
        # every message about the remote is true when shown: its Jupyter went with it
        self._status(name, "down", done.words)

    async def budget_stop(self, name: str) -> None:
        """The daily budget stops this host's instance (a limit: see ``down``)."""
        await self.down(name, stop_instance=True, why="budget")

    async def terminate(self, name: str) -> None:
        from nbterm.services.cloud import lifecycle
        from nbterm.services.cloud.ec2 import Ec2

        host = self.config.hosts[name]
        self._status(name, "closing", "final sync before terminating")
        synced = await self._final_sync(name)
        if not synced.ok:
            self._status(name, "failed", f"{synced.words}: NOT terminated")
            return
        self._status(name, "closing", synced.words)
        await self._close(name, final_sync=False)
        await asyncio.to_thread(
            lifecycle.terminate, Ec2(self.config.aws), host, self.paths,
            note=lambda message: self._status(name, "closing", message),
        )  # fmt: skip
        self._status(name, "terminated")

    def forwards(self, name: str) -> list[OpenForward]:
        """The host's other ports that listen now (none when it is not up)."""
        running = self.running.get(name)
        return list(running.session.remote.others.values()) if running is not None else []

    async def add_forward(self, name: str, remote_port: int, local_port: int | None) -> None:
        """One more port of an up host, for this session (said in the Sync log)."""
        from nbterm.services.remote.tunnel import PortUnavailableError

        running = self.running.get(name)
        if running is None or running.closing:
            self._note(name, f"{name} is not up: press u first")
            return
        there = set(running.session.remote.others)
        try:
            opened = await running.session.remote.add_forward(remote_port, local_port)
        except PortUnavailableError as exc:
            self._note(name, f"port {remote_port} not forwarded: {exc}")
            return
        if opened.name in there:
            self._note(name, f"port {remote_port} is forwarded already ({opened.name}): "
                             f"{opened.url}")  # fmt: skip
            return
        wanted = local_port or remote_port
        taken = f" ({wanted} was taken)" if opened.local_port != wanted else ""
        self._note(name, f"{opened.name} forwarded for this session: {opened.url}{taken}")

    async def close_forward(self, name: str, forward: str) -> None:
        running = self.running.get(name)
        if running is not None and await running.session.remote.close_forward(forward):
            self._note(name, f"{forward} closed (its local port is free)")

    def sync_now(self, name: str) -> bool:
        running = self.running.get(name)
        if running is None:
            return False
        running.session.sync_now()
        return True

    async def close_all(self) -> None:
        """Quit: final sync and close every tunnel; Jupyter keeps running on each remote."""
        await asyncio.gather(
            *(self._close(name, final_sync=True) for name in list(self.running)),
            return_exceptions=True,
        )

    def forget_key(self, name: str) -> int:
        from nbterm.services.cloud.ec2 import Ec2

        host = self.config.hosts[name]
        alias = host.name
        if host.is_ec2:
            running = self.running.get(name)
            instance = running.instance if running else Ec2(self.config.aws).find(host)
            if instance is None:
                return 0
            alias = instance.id
        return KnownHosts(self.paths.known_hosts).forget(alias)

    # --- EC2 (run inside thread workers) --------------------------------------------------------

    def launch(
        self, name: str, template: TemplateConfig, *, spot: bool, tag: str | None = None
    ) -> Instance:
        """The same launch as `nbterm launch` (refused if the host has an instance already);
        its steps go to the sync log. SSH is waited for by the up that follows (the screen
        starts it), which takes over the launch's sentinel: killed before the instance is
        guarded, the cockpit leaves nothing running."""
        from nbterm.services.cloud import lifecycle
        from nbterm.services.cloud.ec2 import Ec2
        from nbterm.services.host import sentinel

        watch = sentinel.post(self.paths, name, "terminate")
        try:
            instance = lifecycle.launch(
                Ec2(self.config.aws), self.config.hosts[name], template, name=tag, spot=spot,
                wait_ssh=False, note=lambda text: self._note(name, text),
                on_launched=watch.watch,
            )  # fmt: skip
        except lifecycle.LaunchLeftOver:
            watch.release()  # it keeps trying in the background
            raise
        except BaseException:
            watch.disarm()
            raise
        self.launched[name] = watch
        self.refresh_instances()
        return instance

    def refresh_instances(self) -> None:
        import datetime as dt

        from nbterm.services.cloud.ec2 import Ec2
        from nbterm.services.cloud.pricing import Rate, rate_of, run_cost
        from nbterm.services.cloud.spending import Ledger

        hosts = [h for h in self.config.hosts.values() if h.is_ec2]
        if not hosts:
            return
        ec2 = Ec2(self.config.aws)
        now = dt.datetime.now(dt.UTC)
        instances: dict[str, Instance | None] = {h.name: ec2.find(h) for h in hosts}
        rates: dict[str, Rate | None] = {}
        for name, instance in instances.items():
            if instance is not None and instance.state == "running":
                rates[name] = rate_of(ec2, self.config.aws, instance,
                                      self.paths.state_dir / "prices.json", now)  # fmt: skip
        prices = {name: None if rate is None else rate.now for name, rate in rates.items()}
        costs = {  # each run's, at the prices it ran at
            name: run_cost(rate, instance, now)
            for name, rate in rates.items()
            if rate is not None and (instance := instances[name]) is not None
        }
        spend = Ledger(self.paths.state_dir / "spend.json").observe(
            instances, rates, budget=self.config.aws.daily_budget, now=now
        )
        self.target.post_message(InstancesRefreshed(instances, prices, spend, costs))  # thread-safe


async def _first(ended: asyncio.Event, closed: asyncio.Event) -> bool:
    """Wait for the session to end by itself (True) or to be closed here (False)."""
    waits = [asyncio.ensure_future(event.wait()) for event in (ended, closed)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return ended.is_set() and not closed.is_set()
