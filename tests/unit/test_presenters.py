"""The words the CLI, the sync log and the toasts use for service events (one module)."""

from __future__ import annotations

import os

from nbterm.presenters import Printer, quiet, toast, words
from nbterm.services.sync.events import CycleDone, FileReceived, SyncFailed
from nbterm.services.sync.rsync_output import exit_message


def test_a_cycle_that_brought_files_says_how_many_and_how_much() -> None:
    done = CycleDone("gpu:~/nb/", "now", ("a.ipynb", "b.ipynb"), 2048, 0.31, True)
    line = words(done)
    assert line == "gpu:~/nb/: now sync done: 2 file(s), 2.0 kB in 0.31s"


def test_a_cycle_asked_for_that_found_nothing_says_so_a_background_one_stays_quiet() -> None:
    asked = CycleDone("gpu:~/nb/", "now", (), 0, 0.05, True)
    assert words(asked) == "gpu:~/nb/: now sync done: nothing new (0.05s)"
    for trigger in ("timer", "remote change"):
        background = CycleDone("gpu:~/nb/", trigger, (), 0, 0.05, True)
        assert quiet(background)
        assert words(background) is None
    assert not quiet(CycleDone("gpu:~/nb/", "timer", ("a.ipynb",), 9, 0.05, True))


def test_a_cycle_with_files_left_behind_says_how_many() -> None:
    done = CycleDone("gpu:~/nb/", "final", ("a.ipynb",), 10, 0.2, False,
                     pending=(("b.ipynb", "being written"),))  # fmt: skip
    assert words(done) == (
        "gpu:~/nb/: final sync incomplete: 1 file(s), 10 B in 0.20s; 1 not synced yet"
    )


def test_a_failure_is_said_by_its_event_once_not_by_every_cycle() -> None:
    done = CycleDone("gpu:~/nb/", "timer", (), 0, 1.0, False)
    assert words(done) is None
    failed = SyncFailed("gpu:~/nb/", 12, exit_message(12), retry_in=4.0)
    assert Printer().line(failed) == (
        "gpu:~/nb/: sync failed (rsync exit 12): the connection broke mid-transfer "
        "(rsync protocol stream error); retrying in 4s"
    )
    once = SyncFailed("gpu:~/nb/", 12, exit_message(12))  # one-shot sync: nothing will retry
    assert "retry" not in (Printer().line(once) or "")
    assert "next cycle" not in (Printer().line(once) or "")


def test_a_hostile_name_reaches_no_terminal() -> None:
    name = "\x1b]2;TITLE\x1b\\x\n.ipynb" + os.fsdecode(b"\xe9")
    line = Printer().line(FileReceived("gpu:~/nb/", name, 10, True)) or ""
    assert "\x1b" not in line
    assert "\n" not in line
    assert "\\e]2;TITLE" in line
    assert line.endswith("\\n.ipynb\\xe9 (10 B, new)")


def test_the_tunnel_state_is_said_when_it_changes() -> None:
    from nbterm.services.remote.events import TunnelHealth

    printer = Printer()
    up = TunnelHealth("gpu", "up", 8157, latency_ms=1.0)
    assert printer.line(up) == "gpu: tunnel up (1.0 ms)"
    assert printer.line(TunnelHealth("gpu", "up", 8157, latency_ms=2.0)) is None
    assert printer.line(TunnelHealth("gpu", "degraded", 8157)) == "gpu: tunnel degraded"
    assert words(up) == "gpu: tunnel up (1.0 ms)"  # without a memory, every one


def test_toasts_use_the_same_words_as_the_log() -> None:
    from nbterm.services.remote.events import IdleWarning, Notice, SpotInterruption, TunnelHealth

    failed = SyncFailed("gpu:~/nb/", 23, "some files could not be transferred")
    shown_toast = toast(failed)
    assert shown_toast is not None
    assert (shown_toast.title, shown_toast.severity) == ("Sync failing: gpu:~/nb/", "error")
    assert f"gpu:~/nb/: {shown_toast.text}" == words(failed)
    idle = IdleWarning("gpu", 50, 10)
    assert toast(idle) is not None
    assert toast(idle).text == words(idle)  # type: ignore[union-attr]
    hostile = Notice("gpu\x1b]2;x\x07", "a\nb")
    assert "\x1b" not in toast(hostile).text  # type: ignore[union-attr]
    spot = toast(SpotInterruption("gpu", "stop", "12:02"))
    assert spot is not None
    assert (spot.title, spot.severity, spot.timeout) == ("SPOT INTERRUPTION", "error", 120.0)
    assert toast(TunnelHealth("gpu", "up", 8157)) is None  # the pane shows it
