"""Notifications that reach a person who is looking at another tmux window, or another app.

Four things are worth interrupting for: a spot interruption notice, an idle-stop warning (and the
stop itself), a failing sync (once, until it works again) and a tunnel down for longer than
``[notify] tunnel_down_seconds``. Each rings the terminal bell (tmux marks the window in its
status line) and shows a desktop notification the way :mod:`nbterm.services.desktop` chose:
the laptop's own notifier where a desktop session is there, tmux's status line inside tmux,
the terminal's OSC 9/777 outside it.

No Textual here: the screen gives the ``write`` and ``bell`` to use, and a clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nbterm.config.schema import NotifyConfig
from nbterm.presenters import AlertKind, Event, alert
from nbterm.services import desktop
from nbterm.services.desktop import Delivery
from nbterm.services.remote.events import ConnectionChanged, TunnelHealth
from nbterm.services.sync.events import SyncFailed, SyncRecovered


class Notifier:
    def __init__(
        self,
        settings: NotifyConfig,
        *,
        write: Callable[[str], None],
        bell: Callable[[], None],
        in_tmux: bool,
        clock: Callable[[], float] = time.monotonic,
        delivery: Delivery | None = None,
        launch: Callable[[list[str]], bool] = desktop.send,
    ) -> None:
        self.settings = settings
        self.write = write
        self.bell = bell
        self.in_tmux = in_tmux
        self.delivery = delivery or desktop.choose(settings.desktop_via)
        """Where desktop notifications go (the laptop's notifier, tmux, the terminal)."""
        self.launch = launch
        self.clock = clock
        self.failing: set[str] = set()
        """Sync rules already notified as failing (said again only after they recover)."""
        self.down_since: dict[str, float] = {}
        self.down_said: set[str] = set()

    def _enabled(self, kind: AlertKind) -> bool:
        return {
            "spot": self.settings.spot,
            "idle": self.settings.idle,
            "sync_failed": self.settings.sync_failed,
            "tunnel_down": self.settings.tunnel_down,
            "spending": self.settings.spending,
        }[kind]

    def notify(self, kind: AlertKind, title: str, body: str) -> None:
        if not self._enabled(kind):
            return
        if self.settings.bell:
            self.bell()
        if not self.settings.desktop:
            return
        for route in self.delivery.routes:
            argv = desktop.command(route, title, body)
            if argv is None:
                self.write(desktop.terminal_sequences(title, body, in_tmux=self.in_tmux))
            else:
                self.launch(argv)

    def event(self, event: Event) -> None:
        """A service event: notify if it is one of the kinds worth it (each said once)."""
        if isinstance(event, SyncRecovered):
            self.failing.discard(event.rule)
        if isinstance(event, SyncFailed):
            if event.rule in self.failing:
                return
            self.failing.add(event.rule)
        if isinstance(event, (TunnelHealth, ConnectionChanged)):
            self.tunnel(event.host, up=event.state in ("up", "connected", "connecting"))
        said = alert(event)
        if said is not None:
            kind, text = said
            self.notify(kind, "nbterm", text)

    def tunnel(self, host: str, *, up: bool) -> None:
        """Where a host's tunnel is now; ``check`` says one that stayed down too long."""
        if up:
            self.down_since.pop(host, None)
            self.down_said.discard(host)
        else:
            self.down_since.setdefault(host, self.clock())

    def status(self, host: str, status: str) -> None:
        """A host's status as the cockpit shows it: a tunnel closed on purpose, or one that
        waits for spot capacity (nothing reconnects then), is nothing to ring about."""
        if status in ("down", "closing", "terminated", "failed", "waiting"):
            self.closed(host)

    def closed(self, host: str) -> None:
        """The tunnel was closed on purpose (down, quit): nothing to say about it."""
        self.down_since.pop(host, None)
        self.down_said.discard(host)

    def check(self) -> None:
        now = self.clock()
        for host, since in list(self.down_since.items()):
            if host not in self.down_said and now - since >= self.settings.tunnel_down_seconds:
                self.down_said.add(host)
                seconds = now - since
                for_how_long = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
                self.notify("tunnel_down", "nbterm",
                            f"{host}: the tunnel has been down for {for_how_long} "
                            "(nbterm keeps reconnecting)")  # fmt: skip
