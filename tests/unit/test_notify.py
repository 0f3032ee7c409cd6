"""What the cockpit's notifications write to the terminal, and when (the clock is a test's)."""

from __future__ import annotations

import dataclasses

from nbterm.config.schema import NotifyConfig
from nbterm.services.desktop import Delivery
from nbterm.services.desktop import terminal_sequences as desktop_sequences
from nbterm.services.remote.events import (
    ConnectionChanged,
    IdleWarning,
    SpotInterruption,
    TunnelHealth,
)
from nbterm.services.sync.events import SyncFailed, SyncRecovered
from nbterm.ui.notify import Notifier


class Terminal:
    def __init__(self) -> None:
        self.bytes = ""
        self.bells = 0
        self.now = 1000.0

    def notifier(self, **settings: object) -> Notifier:
        config = dataclasses.replace(NotifyConfig(), **settings)  # type: ignore[arg-type]
        return Notifier(config, write=self.write, bell=self.bell, in_tmux=False,
                        clock=lambda: self.now, delivery=Delivery(("terminal",), ""))  # fmt: skip

    def write(self, text: str) -> None:
        self.bytes += text

    def bell(self) -> None:
        self.bells += 1


def test_a_spot_notice_rings_and_asks_for_a_desktop_notification() -> None:
    terminal = Terminal()
    terminal.notifier().event(SpotInterruption("gpu", "stop", "12:02"))
    assert terminal.bells == 1
    assert "\x1b]9;nbterm: SPOT INTERRUPTION: AWS will stop gpu at 12:02, syncing now\x07" in (
        terminal.bytes
    )
    assert "\x1b]777;notify;nbterm;SPOT INTERRUPTION" in terminal.bytes


def test_inside_tmux_the_sequences_are_wrapped_for_passthrough() -> None:
    wrapped = desktop_sequences("nbterm", "hello", in_tmux=True)
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]9;nbterm: hello\x07\x1b\\")
    assert "\x1bPtmux;\x1b\x1b]777;notify;nbterm;hello\x07\x1b\\" in wrapped


def test_a_failing_sync_is_said_once_until_it_works_again() -> None:
    terminal = Terminal()
    notifier = terminal.notifier()
    for _ in range(3):
        notifier.event(SyncFailed("gpu:~/nb/", 23, "partial transfer", retry_in=4.0))
    assert terminal.bells == 1
    notifier.event(SyncRecovered("gpu:~/nb/", 3))
    notifier.event(SyncFailed("gpu:~/nb/", 23, "partial transfer", retry_in=4.0))
    assert terminal.bells == 2


def test_each_kind_has_its_off_switch_and_bell_and_desktop_are_separate() -> None:
    terminal = Terminal()
    terminal.notifier(idle=False).event(IdleWarning("gpu", 50, 10))
    assert (terminal.bells, terminal.bytes) == (0, "")
    terminal.notifier(bell=False).event(IdleWarning("gpu", 50, 10))
    assert terminal.bells == 0 and "idle for 50 min" in terminal.bytes
    terminal.bytes = ""
    terminal.notifier(desktop=False).event(IdleWarning("gpu", 50, 10))
    assert (terminal.bells, terminal.bytes) == (1, "")


def test_a_tunnel_down_longer_than_the_limit_is_said_once() -> None:
    terminal = Terminal()
    notifier = terminal.notifier(tunnel_down_seconds=60)
    notifier.event(TunnelHealth("gpu", "up", 8157))
    notifier.event(ConnectionChanged("gpu", "lost", "the SSH connection dropped"))
    terminal.now += 59
    notifier.check()
    assert terminal.bells == 0  # a minute of reconnecting is the tunnel's own business
    terminal.now += 2
    notifier.check()
    notifier.check()
    assert terminal.bells == 1
    assert "gpu: the tunnel has been down for 61 s" in terminal.bytes
    notifier.event(TunnelHealth("gpu", "up", 8157))
    notifier.event(TunnelHealth("gpu", "reconnecting", 8157))
    terminal.now += 30
    notifier.check()
    assert terminal.bells == 1


def test_a_tunnel_closed_on_purpose_says_nothing() -> None:
    terminal = Terminal()
    notifier = terminal.notifier(tunnel_down_seconds=1)
    notifier.event(TunnelHealth("gpu", "down", 8157, message="closed"))
    notifier.closed("gpu")
    terminal.now += 10
    notifier.check()
    assert terminal.bells == 0


def test_waiting_for_spot_capacity_never_claims_nbterm_keeps_reconnecting() -> None:
    """Before: while the cockpit waited for capacity, the tunnel-down notification said
    "nbterm keeps reconnecting" (nothing reconnects then: the instance is stopped)."""
    terminal = Terminal()
    notifier = terminal.notifier(tunnel_down_seconds=1)
    notifier.event(TunnelHealth("gpu", "down", 8157, message="closed"))
    notifier.status("gpu", "waiting")
    terminal.now += 120
    notifier.check()
    assert "keeps reconnecting" not in terminal.bytes and terminal.bells == 0
    notifier.event(TunnelHealth("gpu", "down", 8157))  # up again later, then a real drop
    terminal.now += 5
    notifier.check()
    assert terminal.bells == 1 and "keeps reconnecting" in terminal.bytes


def test_remote_words_cannot_end_the_sequence_early() -> None:
    terminal = Terminal()
    terminal.notifier().event(
        SyncFailed("gpu:~/x\x07\x1b]2;owned\x1b\\;y/", 12, "bad\x07name;\x1b[31m")
    )
    payloads = terminal.bytes.split("\x07")
    assert len(payloads) == 3 and payloads[-1] == ""  # two sequences, each ended once
    assert "\x1b]2;" not in terminal.bytes
    assert terminal.bytes.count("\x1b") == 2  # only the two introducers
