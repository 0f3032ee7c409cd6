"""One SSH connection per host, kept alive: reconnect with capped exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nbterm.services.remote.events import ConnectionChanged, HostKeyTrusted, RemoteEvent
from nbterm.services.remote.host_keys import HostKeyQuestion, KnownHosts, Verifier
from nbterm.services.remote.ssh import (
    ConnectFailedError,
    HostKeyError,
    Link,
    SshError,
    SshTarget,
    connect,
)
from nbterm.services.tasks import cancel_and_wait

EventSink = Callable[[RemoteEvent], None]


@dataclass(frozen=True)
class Relocation:
    """Where the host is now, as its owner (EC2) says: a new target, or why it is gone."""

    target: SshTarget | None = None
    gone: str | None = None
    """Set when there is nothing to reconnect to (the instance stopped, was interrupted,
    terminated): the connection ends and says this."""


Relocator = Callable[[], Awaitable[Relocation]]
RELOCATE_AFTER = 2
"""Failed reconnect attempts before the owner of the host is asked where it went."""


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnect attempts: base x 2^n, capped, with full jitter in [50%, 100%]."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * (2.0 ** min(attempt, 30)))
        jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        return ceiling * jitter


class HostConnection:
    """Owns the SSH link to one host; everything that needs the host borrows it with :meth:`get`.

    After the first connection, a supervisor task watches the link; when it dies (keepalive,
    reset, sshd restart, sleep) it reconnects until it succeeds or :meth:`close` is called. A
    host key problem is never retried: it needs a person.
    """

    def __init__(
        self,
        target: SshTarget,
        known: KnownHosts,
        verifier: Verifier | None,
        on_event: EventSink,
        *,
        backoff: Backoff | None = None,
        on_reconnected: Callable[[Link], Awaitable[None]] | None = None,
        relocate: Relocator | None = None,
    ) -> None:
        self.target = target
        self.known = known
        self.verifier = verifier
        self.on_event = on_event
        self.backoff = backoff or Backoff()
        self.on_reconnected = on_reconnected
        self.relocate = relocate
        """Asked after RELOCATE_AFTER failed attempts (then every few more): an EC2 instance
        may have moved to a new address, or stopped, while the old one is dialled in vain."""
        self.on_moved: Callable[[SshTarget], None] | None = None
        self.gone: str | None = None
        self.reconnects = 0
        self._link: Link | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        self.failure: SshError | None = None

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.is_closed

    def _emit(self, event: RemoteEvent) -> None:
        self.on_event(event)

    def _trusted(self, question: HostKeyQuestion) -> None:
        self._emit(HostKeyTrusted(self.name, question.alias, question.key_type, question.sha256))

    async def _connect_once(self) -> Link:
        return await connect(self.target, self.known, self.verifier, on_new_key=self._trusted)

    async def open(self, wait: float = 0.0, delay: float = 2.0) -> Link:
        """The first connection: errors are raised to the caller, not retried, except that for
        ``wait`` seconds a host that does not answer yet is tried again (an instance reached
        through a jump host, booting: only the jump can tell when its SSH is up)."""
        self._emit(
            ConnectionChanged(self.name, "connecting", f"{self.target.login}@{self.target.where}")
        )
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                link = await self._connect_once()
                break
            except ConnectFailedError as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                self._emit(ConnectionChanged(self.name, "connecting", f"waiting for SSH: {exc}"))
                await asyncio.sleep(delay)
        self._set(link)
        self._emit(ConnectionChanged(self.name, "connected"))
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ssh:{self.name}")
        return link

    def _set(self, link: Link | None) -> None:
        self._link = link
        if link is None:
            self._ready.clear()
        else:
            self._ready.set()

    async def get(self, timeout: float) -> Link:
        """The current link, waiting up to ``timeout`` seconds while a reconnect is under way."""
        if self._closed:
            raise ConnectionError(f"{self.name}: the connection was closed")
        if self.failure is not None:
            raise self.failure
        if not self.connected:
            self._set(None)
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self._link is not None
        return self._link

    async def _supervise(self) -> None:
        while not self._closed:
            link = self._link
            if link is not None:
                await link.wait_closed()
            if self._closed:
                return
            self._set(None)
            self._emit(ConnectionChanged(self.name, "lost", "the SSH connection dropped"))
            link = await self._reconnect()
            if link is None:
                return
            self.reconnects += 1
            self._set(link)
            self._emit(ConnectionChanged(self.name, "connected", attempt=self.reconnects))
            if self.on_reconnected is not None:
                try:
                    await self.on_reconnected(link)
                except Exception as exc:  # noqa: BLE001 - reported, the link stays up
                    self._emit(ConnectionChanged(self.name, "connected", f"after reconnect: {exc}"))

    async def _reconnect(self) -> Link | None:
        attempt = 0
        while not self._closed:
            delay = self.backoff.delay(attempt)
            attempt += 1
            self._emit(
                ConnectionChanged(self.name, "reconnecting", attempt=attempt, retry_in=delay)
            )
            await asyncio.sleep(delay)
            try:
                return await self._connect_once()
            except HostKeyError as exc:
                self.failure = exc
                self._emit(ConnectionChanged(self.name, "down", str(exc)))
                return None
            except SshError as exc:
                self._emit(ConnectionChanged(self.name, "reconnecting", str(exc), attempt=attempt))
            asking = self.relocate is not None and attempt % RELOCATE_AFTER == 0
            if asking and not await self._follow():
                return None
        return None

    async def _follow(self) -> bool:
        """Ask where the host went; False when it is gone (said, and the connection ends)."""
        assert self.relocate is not None
        try:
            where = await self.relocate()
        except Exception as exc:  # noqa: BLE001 - the owner cannot be asked now: keep dialling
            self._emit(ConnectionChanged(self.name, "reconnecting", f"cannot ask EC2: {exc}"))
            return True
        if where.gone is not None:
            self.gone = where.gone
            self._emit(ConnectionChanged(self.name, "down", where.gone))
            return False
        if where.target is not None and where.target.where != self.target.where:
            before, self.target = self.target.where, where.target
            self._emit(
                ConnectionChanged(
                    self.name, "reconnecting", f"moved from {before} to {self.target.where}"
                )
            )
            if self.on_moved is not None:
                self.on_moved(self.target)
        return True

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._supervisor)
        if self._link is not None:
            self._link.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._link.wait_closed(), 5)
        self._set(None)
        self._emit(ConnectionChanged(self.name, "down", "closed"))
