"""Notifications that reach a person who is looking at another tmux window, or another app.

Four things are worth interrupting for: a spot interruption notice, an idle-stop warning (and the
stop itself), a failing sync (once, until it works again) and a tunnel down for longer than
``[notify] tunnel_down_seconds``. Each rings the terminal bell (tmux marks the window in its
status line) and asks the terminal for a desktop notification with OSC 9 (iTerm2, kitty,
WezTerm, Windows Terminal) and OSC 777 (foot, VTE terminals such as GNOME Terminal). Inside
tmux those are wrapped for passthrough (tmux hands them on with ``allow-passthrough on``);
terminals that know neither ignore them.

No Textual here: the screen gives the ``write`` and ``bell`` to use, and a clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nbterm.config.schema import NotifyConfig
from nbterm.presenters import AlertKind, Event, alert
from nbterm.safe_text import shown
from nbterm.services.remote.events import ConnectionChanged, TunnelHealth
from nbterm.services.sync.events import SyncFailed, SyncRecovered

MAX_TEXT = 200


def _field(text: str) -> str:
    """Inert text for an OSC field: no control characters (``shown``), no field separator."""
    return shown(text).replace(";", ",")[:MAX_TEXT]


def desktop_sequences(title: str, body: str, *, in_tmux: bool) -> str:
    """OSC 9 and OSC 777 for one notification, wrapped for tmux's passthrough when inside it."""
    title, body = _field(title), _field(body)
    sequences = [f"\x1b]9;{title}: {body}\x07", f"\x1b]777;notify;{title};{body}\x07"]
    if in_tmux:
        sequences = ["\x1bPtmux;" + s.replace("\x1b", "\x1b\x1b") + "\x1b\\" for s in sequences]
    return "".join(sequences)


class Notifier:
    def __init__(
        self,
        settings: NotifyConfig,
        *,
        write: Callable[[str], None],
        bell: Callable[[], None],
        in_tmux: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.write = write
        self.bell = bell
        self.in_tmux = in_tmux
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
        if self.settings.desktop:
            self.write(desktop_sequences(title, body, in_tmux=self.in_tmux))

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
