"""One host, brought up and down: connect, verify, Jupyter, tunnel, health.

``up()`` connects (asking the verifier about a new host key), reattaches to the Jupyter already
running on the remote or starts one, opens the tunnel, and starts watching its health. ``down()``
closes the tunnel and the connection and leaves Jupyter running, so kernels survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncssh

from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.remote import jupyter
from nbterm.services.remote.connection import Backoff, EventSink, HostConnection, Relocator
from nbterm.services.remote.events import (
    ConnectionChanged,
    ForwardClosed,
    ForwardHealth,
    ForwardOpened,
    ForwardState,
    JupyterReady,
    Notice,
    RemoteEvent,
    TunnelHealth,
    TunnelOpened,
    TunnelState,
)
from nbterm.services.remote.forward import Forward, ForwardMode, InlineForward, ProcessForward
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.lane import LaneSpec
from nbterm.services.remote.probe import ProbeError, get_status, ping, probe_port
from nbterm.services.remote.ssh import Link, SshTarget, target_for
from nbterm.services.remote.token import host_token
from nbterm.services.remote.tunnel import PortUnavailableError
from nbterm.services.tasks import cancel_and_wait

DEGRADED_MS = 1000.0
MAX_RESTARTS = 3
RESTART_WINDOW = 600.0
"""Jupyter is restarted when it dies while the host is up, at most MAX_RESTARTS times in
RESTART_WINDOW seconds; then nbterm stops trying and says what to do."""


@dataclass(frozen=True)
class OpenForward:
    """One of the host's other ports, listening on the laptop."""

    name: str
    remote_port: int
    local_port: int
    session_only: bool = False
    open_on_up: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}/"


@dataclass(frozen=True)
class UpResult:
    url: str
    local_port: int
    server: jupyter.JupyterServer
    forwards: tuple[OpenForward, ...] = ()
    """The host's other ports (its ``forwards``) that listen."""


class Session:
    """The running state of one host: its connection, Jupyter and tunnel."""

    def __init__(
        self,
        host: Host,
        target: SshTarget,
        paths: Paths,
        *,
        verifier: Verifier | None,
        on_event: EventSink,
        probe_interval: float = 5.0,
        probe_timeout: float = 5.0,
        backoff: Backoff | None = None,
        forward: ForwardMode = "inline",
        relocate: Relocator | None = None,
        on_gone: Callable[[str], None] | None = None,
        first_connect_wait: float = 0.0,
        lane: LaneSpec | None = None,
    ) -> None:
        """``lane``: where a forwarder process finds the host in nbterm's generated ssh config,
        for its OpenSSH master (written before :meth:`up`; see :mod:`lane`)."""
        self.host = host
        self.paths = paths
        self.on_event = on_event
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.connection = HostConnection(
            target,
            KnownHosts(paths.known_hosts),
            verifier,
            self._on_connection_event,
            backoff=backoff,
            on_reconnected=self._after_reconnect,
            relocate=relocate,
        )
        self.connection.on_moved = self._moved
        self.on_gone = on_gone
        self.first_connect_wait = first_connect_wait
        """How long the first connection may wait for a host that does not answer yet."""
        """Called once when the host is gone (its instance stopped): the session is over."""
        self.forward: Forward = (
            ProcessForward(
                target,
                KnownHosts(paths.known_hosts),
                host.jupyter.local_port,
                on_link=self._on_forward_link,
                on_notice=lambda message: self.on_event(Notice(self.name, message)),
                lane=lane,
            )
            if forward == "process"
            else InlineForward(self.connection, host.jupyter.local_port)
        )
        self.forwarding = False
        """The forward listens (``up`` got that far)."""
        self.others: dict[str, OpenForward] = {}
        """The host's other ports, by name: its ``forwards``, and those added for the session."""
        self._link_up = True
        """The tunnel's own SSH link (a forwarder process's) is connected."""
        self.server: jupyter.JupyterServer | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._state: TunnelState = "connecting"
        self._wake = asyncio.Event()
        self._closing = False
        self.token = host_token(paths, host.name)
        """The token nbterm keeps for this host: a server it starts uses it (a stable URL)."""
        self._restarts: list[float] = []
        self._last_kernels: int | None = None
        self.auth: Literal["token", "password", "none"] = "token"
        """How the server takes a login: nbterm's token (the usual), only its own password
        (its config turned tokens off), or nothing at all (said as a warning)."""
        self.kernels_lost = False
        """nbterm restarted a Jupyter that had kernels, and no kernel has run since."""
        self.gave_up = False
        """Jupyter died too often and nbterm stopped restarting it: it is NOT running."""
        self._left: int | None = None
        """Kernels the dead server left behind (its connection files), counted before a
        restart (None: not known)."""
        self.on_connected: Callable[[], Awaitable[None]] | None = None
        """Run once the first connection is open, before Jupyter is found or started (the
        host's session arms the instance's idle guard there, as early as it can)."""
        self.machine_gone = ""
        """Why the machine itself is down (its instance stopped), or "": no word about its
        Jupyter may then say it keeps running."""

    @classmethod
    def for_host(
        cls,
        config: LoadedConfig,
        name: str,
        paths: Paths,
        *,
        verifier: Verifier | None,
        on_event: EventSink,
        probe_interval: float = 5.0,
        target: SshTarget | None = None,
        forward: ForwardMode = "inline",
        relocate: Relocator | None = None,
        on_gone: Callable[[str], None] | None = None,
        first_connect_wait: float = 0.0,
    ) -> Session:
        host = config.hosts[name]
        target = target or target_for(host, config)
        lane = LaneSpec.of(paths, name) if forward == "process" else None
        return cls(
            host,
            target,
            paths,
            verifier=verifier,
            on_event=on_event,
            probe_interval=probe_interval,
            forward=forward,
            relocate=relocate,
            on_gone=on_gone,
            first_connect_wait=first_connect_wait,
            lane=lane,
        )

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def target(self) -> SshTarget:
        """Where the host is reached now: the connection's (it follows a moved instance)."""
        return self.connection.target

    def _on_connection_event(self, event: RemoteEvent) -> None:
        self.on_event(event)
        if isinstance(event, ConnectionChanged) and self.forwarding and not self._closing:
            if event.state in ("lost", "reconnecting"):
                self._report("reconnecting", message=event.message)
            elif event.state == "down":
                self._report("down", message=event.message)
            elif event.state == "connected":
                self._wake.set()  # probe at once rather than at the next tick
        gone = self.connection.gone
        down = isinstance(event, ConnectionChanged) and event.state == "down"
        if down and gone is not None and self.on_gone is not None and not self._closing:
            self.on_gone(gone)

    def _moved(self, target: SshTarget) -> None:
        """The host answers at a new address now (EC2 said so): the tunnel follows."""
        self.forward.retarget(target)

    def _on_forward_link(self, event: ConnectionChanged) -> None:
        """The forwarder process's own SSH link (the cockpit's tunnel) changed."""
        self._link_up = event.state == "connected"
        if not self.forwarding or self._closing:
            return
        if event.state in ("lost", "reconnecting"):
            self._report("reconnecting", message=f"tunnel link: {event.message or event.state}")
        elif event.state == "down":
            self._report("down", message=f"tunnel link: {event.message}")
        elif event.state == "connected":
            self._wake.set()

    async def up(self) -> UpResult:
        link = await self.connection.open(wait=self.first_connect_wait)
        try:
            if self.on_connected is not None:
                await self.on_connected()
            await self.forward.prepare()  # (a forwarder process connects meanwhile)
            try:
                self.server = await self._ensure_jupyter(link)
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, ConnectionError) as exc:
                # the link dropped while Jupyter was being started or found: the connection's
                # supervisor reconnects; try once more on the new link (ensure finds a started one)
                self.on_event(ConnectionChanged(self.name, "lost", f"during start-up: {exc}"))
                link = await self.connection.get(self.target.connect_timeout * 2)
                self.server = await self._ensure_jupyter(link)
            local_port = await self.forward.open(self.server.port)
        except BaseException:
            await self.forward.close()
            raise
        self.forwarding = True
        url = self.server.local_url(local_port)
        self.on_event(
            TunnelOpened(self.name, local_port, self.host.jupyter.local_port, self.server.port, url)
        )
        await self._learn_auth(local_port)
        for spec in self.host.forwards:
            try:
                await self._open_other(spec.name, spec.remote_port, spec.local_port,
                                       open_on_up=spec.open_on_up)  # fmt: skip
            except PortUnavailableError as exc:
                self.on_event(Notice(self.name, f"{spec.name}: not forwarded: {exc}"))
        self._health_task = asyncio.create_task(self._watch_health(), name=f"health:{self.name}")
        return UpResult(url, local_port, self.server, tuple(self.others.values()))

    async def _open_other(
        self,
        name: str,
        remote_port: int,
        wanted_port: int,
        *,
        session_only: bool = False,
        open_on_up: bool = False,
    ) -> OpenForward:
        port = await self.forward.add(name, remote_port, wanted_port)
        opened = OpenForward(name, remote_port, port, session_only, open_on_up)
        self.others[name] = opened
        self.on_event(ForwardOpened(self.name, name, port, wanted_port, remote_port, session_only))
        return opened

    async def add_forward(self, remote_port: int, local_port: int | None = None) -> OpenForward:
        """Forward one more port of the remote, for this session only (named ``port N``): on
        ``local_port`` (default: the remote port) or the next free one. PortUnavailableError:
        none is free; an up session only."""
        if not self.forwarding or self._closing:
            raise RuntimeError(f"{self.name} is not up")
        for other in self.others.values():
            if other.remote_port == remote_port and local_port in (None, other.local_port):
                return other  # (asked twice: the one there is)
        name = f"port {remote_port}"
        if name in self.others:
            name = f"port {remote_port} on {local_port}"
        opened = await self._open_other(
            name, remote_port, local_port or remote_port, session_only=True
        )
        self._wake.set()  # its health at once
        return opened

    async def close_forward(self, name: str) -> bool:
        """Stop forwarding one of the other ports (its open connections close)."""
        other = self.others.pop(name, None)
        if other is None:
            return False
        await self.forward.remove(name)
        self.on_event(ForwardClosed(self.name, name, other.session_only))
        return True

    async def _learn_auth(self, port: int) -> None:
        """A server whose own config turned tokens off: does it want a password, or nothing?"""
        assert self.server is not None
        self.auth = "token" if self.server.token else "password"
        if self.server.token:
            return
        try:
            await get_status(port, "", self.probe_timeout, self.server.base_url)
        except ProbeError:
            self.on_event(
                Notice(
                    self.name,
                    "this Jupyter takes only its own password (its config turned tokens off): "
                    "the URL carries no token, the browser asks for the password, and nbterm "
                    "sees only whether it answers (not its kernels or activity)",
                )
            )
            return
        self.auth = "none"
        self.on_event(
            Notice(
                self.name,
                "WARNING: this Jupyter has no token and no password (its own config turned "
                "them off): anyone who can reach 127.0.0.1 on the remote (every user of that "
                "machine) can run code as you. Set a password or remove the setting.",
            )
        )

    async def _ensure_jupyter(self, link: Link) -> jupyter.JupyterServer:
        before = self.server
        server = await jupyter.ensure(link, self.host.jupyter, token=self.token)
        self.on_event(
            JupyterReady(self.name, server.port, server.pid, server.started, server.root_dir)
        )
        if before is not None and server.started:
            same = not self.forwarding or (
                server.token == before.token and server.base_url == before.base_url
            )
            # what was lost: the kernels the dead server left behind (their connection files),
            # or, when it left nothing to go by, what the last probe saw
            left, self._left = self._left, None
            probed = self._last_kernels != 0  # (None: never probed: lost, to be safe)
            lost = probed if left is None else left > 0 or bool(self._last_kernels)
            self.kernels_lost = self.kernels_lost or lost
            what = "kernels were lost" if lost else "no kernel was running: nothing was lost"
            self.on_event(
                Notice(
                    self.name,
                    f"restarted Jupyter ({what}); "
                    + ("the URL is unchanged: open tabs reconnect by themselves" if same
                       else "it has a new URL: press c or o, or see `nbterm status`"),
                )
            )  # fmt: skip
            if not same:
                port = self.forward.local_port
                self.on_event(
                    TunnelOpened(self.name, port, port, server.port, server.local_url(port))
                )
        return server

    async def start_jupyter_again(self) -> None:
        """``u`` after nbterm gave up restarting a Jupyter that kept dying: start it once more
        (its restarts count afresh). Raises what starting raises (JupyterError...)."""
        link = await self.connection.get(self.target.connect_timeout)
        self._restarts = []
        server = await self._ensure_jupyter(link)
        self.server, self.gave_up = server, False
        self.forward.follow(server.port)
        self._wake.set()

    @property
    def jupyter_running(self) -> bool:
        """As far as nbterm knows: False once it gave up restarting a Jupyter that kept dying."""
        return self.server is not None and not self.gave_up

    async def _supervise_jupyter(self) -> bool:
        """After a failed probe: if Jupyter itself is gone, say why and restart it (bounded).
        Returns True when it handled the failure (restarted, or gave up and said so)."""
        if self.gave_up:
            self._report("down", message="Jupyter is not running (nbterm stopped restarting it)")
            return True
        try:
            link = await self.connection.get(self.target.connect_timeout)
            if await jupyter.discover(link, self.host.jupyter) is not None:
                return False  # it runs: the probe failed for another reason
            tail = await jupyter.log_tail(link, self.host.jupyter, lines=3)
            if self.server is not None:
                self._left = await jupyter.kernels_left(link, self.host.jupyter, self.server.pid)
        except Exception:  # noqa: BLE001 - the link went: the connection's supervisor reports it
            return False
        pid = self.server.pid if self.server is not None else "?"
        last = " | ".join(line.strip() for line in tail.splitlines() if line.strip())
        self.on_event(
            Notice(self.name, f"Jupyter (pid {pid}) stopped; its last output: {last or '(none)'}")
        )
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
        if len(self._restarts) > MAX_RESTARTS:
            self.gave_up = True
            log = f"~/{jupyter.REMOTE_DIR}/{self.host.jupyter.tmux_session}.log"
            self.on_event(
                Notice(
                    self.name,
                    f"Jupyter stopped {len(self._restarts)} times in "
                    f"{RESTART_WINDOW / 60:g} minutes: not restarting it again. Read its log on "
                    f"the remote ({log}), fix the cause, then bring the host up again.",
                )
            )
            self._report("down", message="Jupyter is not running")
            return True
        await asyncio.sleep(min(2.0 ** (len(self._restarts) - 1) - 1, 8.0))
        try:
            self.server = await self._ensure_jupyter(link)
        except (jupyter.JupyterError, OSError, asyncssh.Error) as exc:
            self.on_event(Notice(self.name, f"could not restart Jupyter: {exc}"))
            self._report("degraded", message="Jupyter is not running; retrying")
            return True
        self.forward.follow(self.server.port)
        self._wake.set()
        return True

    async def _after_reconnect(self, link: Link) -> None:
        """The remote may have rebooted: find (or restart) Jupyter and follow its port."""
        server = await self._ensure_jupyter(link)
        self.server = server
        if self.forwarding:
            self.forward.follow(server.port)

    def _report(
        self,
        state: TunnelState,
        *,
        latency: float | None = None,
        kernels: int | None = None,
        connections: int | None = None,
        last_activity: str | None = None,
        message: str = "",
    ) -> None:
        self._state = state
        port = self.forward.local_port
        self.on_event(
            TunnelHealth(
                self.name,
                state,
                port,
                latency_ms=latency,
                kernels=kernels,
                connections=connections,
                last_activity=last_activity,
                reconnects=self.connection.reconnects + self.forward.restarted,
                message=message,
                needs_password=self.auth == "password",
                kernels_lost=self.kernels_lost,
            )
        )
        if state in ("reconnecting", "down"):  # the other ports go the same way
            for other in self.others.values():
                self._report_other(other, state, message=message)

    def _report_other(
        self,
        other: OpenForward,
        state: ForwardState,
        *,
        latency: float | None = None,
        answer: str = "",
        message: str = "",
    ) -> None:
        self.on_event(
            ForwardHealth(self.name, other.name, state, other.local_port, latency, answer, message)
        )

    async def probe_others(self) -> None:
        """Each other port's server, through its tunnel: HTTP when it answers HTTP, else
        whether it answers at all."""
        if not self.connection.connected or not self._link_up:
            return  # (said: reconnecting)
        await asyncio.gather(*(self._probe_other(other) for other in list(self.others.values())))

    async def _probe_other(self, other: OpenForward) -> None:
        if not self.forward.serving(other.name):
            self._report_other(other, "connecting", message="the tunnel's process starts it")
            return
        try:
            answer = await probe_port(other.local_port, self.probe_timeout)
        except ProbeError as exc:
            self._report_other(other, "down", message=str(exc))
            return
        if other.name not in self.others or self._closing:
            return  # closed meanwhile
        if answer.kind == "closed":
            self._report_other(other, "no server", answer=answer.words, message="nothing "
                               f"listens on the remote's port {other.remote_port}")  # fmt: skip
            return
        slow = answer.latency_ms is not None and answer.latency_ms >= DEGRADED_MS
        self._report_other(other, "degraded" if slow else "up", latency=answer.latency_ms,
                           answer=answer.words)  # fmt: skip

    async def probe_once(self) -> None:
        assert self.forwarding
        assert self.server is not None
        if not self.connection.connected:
            return
        port, server = self.forward.local_port, self.server
        try:
            if self.auth == "password":
                latency = await ping(port, self.probe_timeout, server.base_url)
            else:
                status = await get_status(port, server.token, self.probe_timeout, server.base_url)
        except ProbeError as exc:
            if self.connection.connected and not await self._supervise_jupyter():
                self._report("degraded", message=str(exc))
            return
        if self.auth == "password":  # its version answers; kernels and activity are private
            slow = latency >= DEGRADED_MS
            self._report("degraded" if slow else "up", latency=latency,
                         message=f"slow: {latency:.0f} ms" if slow else "")  # fmt: skip
            return
        self._last_kernels = status.kernels
        if status.kernels > 0:
            self.kernels_lost = False
        state: TunnelState = "up" if status.latency_ms < DEGRADED_MS else "degraded"
        self._report(
            state,
            latency=status.latency_ms,
            kernels=status.kernels,
            connections=status.connections,
            last_activity=status.last_activity,
            message="" if state == "up" else f"slow: {status.latency_ms:.0f} ms",
        )

    async def _watch_health(self) -> None:
        while True:
            await asyncio.gather(self.probe_once(), self.probe_others())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._until_next_tick())

    def _until_next_tick(self) -> float:
        """Seconds to the next multiple of the interval on the monotonic clock.

        Every host probes on the same ticks, so their health reaches the screen together (one
        redraw per tick, not one per host); a tick closer than half an interval is skipped.
        """
        interval = self.probe_interval
        wait = interval - time.monotonic() % interval
        return wait + interval if wait < interval / 2 else wait

    async def down(self) -> None:
        """Close the tunnel and the connection. Jupyter keeps running on the remote."""
        self._closing = True
        await cancel_and_wait(self._health_task)
        await self.forward.close()
        await self.connection.close()
        for other in list(self.others.values()):
            if other.session_only:
                self.on_event(ForwardClosed(self.name, other.name, session_only=True))
            else:
                self._report_other(other, "down", message="closed")
        self.others.clear()
        if self.forwarding:
            where = (
                f"{self.machine_gone}: Jupyter went with it"
                if self.machine_gone
                else "Jupyter keeps running on the remote"
                if self.jupyter_running
                else "Jupyter is NOT running on the remote"
            )
            self._report("down", message=f"closed; {where}")
