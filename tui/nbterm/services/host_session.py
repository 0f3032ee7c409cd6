"""A host brought up whole: the remote session (Jupyter, tunnel) plus its sync rules.

``up()`` opens the remote session, then starts each sync rule (timer, remote watcher over the same
SSH connection). ``down()`` runs a bounded final sync first, then closes everything; Jupyter keeps
running on the remote. The EC2 layer adds starting and stopping the instance around this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nbterm.config import LoadedConfig
from nbterm.locations import Paths
from nbterm.services.remote.events import RemoteEvent
from nbterm.services.remote.host_keys import Verifier
from nbterm.services.remote.session import Session, UpResult
from nbterm.services.remote.ssh import Link, SshTarget
from nbterm.services.sync.engine import SyncEngine
from nbterm.services.sync.events import CycleDone, SyncEvent
from nbterm.services.sync.ssh_config import Ec2Address, end_master, write_ssh_config
from nbterm.services.sync.watcher import RemoteWatcher, WatchMode
from nbterm.services.tasks import cancel_and_wait

Sink = Callable[[RemoteEvent | SyncEvent], None]


@dataclass(frozen=True)
class FinalSyncResult:
    cycles: tuple[CycleDone, ...]

    @property
    def ok(self) -> bool:
        return all(cycle.ok for cycle in self.cycles)

    @property
    def files(self) -> int:
        return sum(len(cycle.files) for cycle in self.cycles)


class HostSession:
    def __init__(
        self,
        config: LoadedConfig,
        name: str,
        paths: Paths,
        *,
        verifier: Verifier | None,
        on_event: Sink,
        probe_interval: float = 5.0,
        watch_mode: WatchMode = "auto",
        io_timeout: int = 30,
        target: SshTarget | None = None,
        ec2: Mapping[str, Ec2Address] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.paths = paths
        self.on_event = on_event
        self.watch_mode = watch_mode
        self.ec2 = dict(ec2 or {})
        self.remote = Session.for_host(
            config,
            name,
            paths,
            verifier=verifier,
            on_event=on_event,
            probe_interval=probe_interval,
            target=target,
        )
        self.engines: list[SyncEngine] = []
        self.io_timeout = io_timeout
        self._tasks: list[asyncio.Task[None]] = []

    async def up(self) -> UpResult:
        result = await self.remote.up()
        rules = self.config.sync_rules_for(self.name)
        if rules:
            ssh_config = write_ssh_config(self.config, self.paths, self.ec2)
            for rule in rules:
                engine = SyncEngine(
                    rule, self.paths, ssh_config, self.on_event, io_timeout=self.io_timeout
                )
                watcher = RemoteWatcher(
                    self._link, rule.remote, engine.remote_changed, mode=self.watch_mode
                )
                self.engines.append(engine)
                self._tasks.append(asyncio.create_task(engine.run(), name=f"sync:{rule.host}"))
                self._tasks.append(asyncio.create_task(watcher.run(), name=f"watch:{rule.host}"))
        return result

    async def _link(self) -> Link:
        return await self.remote.connection.get(timeout=3600)

    def sync_now(self) -> None:
        for engine in self.engines:
            engine.request("now")

    async def final_sync(self, timeout: float = 120.0) -> FinalSyncResult:
        """A last, bounded sync of every rule (each engine waits for a running cycle first)."""
        cycles = await asyncio.gather(*(engine.final_sync(timeout) for engine in self.engines))
        return FinalSyncResult(tuple(cycles))

    async def down(self, *, final_sync: bool = True, timeout: float = 120.0) -> FinalSyncResult:
        result = FinalSyncResult(())
        if final_sync and self.engines:
            result = await self.final_sync(timeout)
        for task in self._tasks:
            await cancel_and_wait(task)
        await self.remote.down()
        if self.engines:
            await end_master(self.paths.ssh_config, self.name)
        return result
