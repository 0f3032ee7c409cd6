"""The words the CLI and the sync log use for sync events."""

from __future__ import annotations

import os

from nbterm.presenters import Printer
from nbterm.services.sync.events import CycleDone, FileReceived, SyncFailed
from nbterm.services.sync.rsync_output import exit_message


def test_a_cycle_that_brought_files_says_how_many_and_how_much() -> None:
    done = CycleDone("gpu:~/nb/", "now", ("a.ipynb", "b.ipynb"), 2048, 0.31, True)
    line = Printer(quiet_cycles=False).line(done)
    assert line == "gpu:~/nb/: now sync done: 2 file(s), 2.0 kB in 0.31s"


def test_a_cycle_that_found_nothing_says_so() -> None:
    done = CycleDone("gpu:~/nb/", "now", (), 0, 0.05, True)
    assert Printer(quiet_cycles=False).line(done) == "gpu:~/nb/: now sync done: nothing new (0.05s)"
    assert Printer(quiet_cycles=True).line(done) is None


def test_a_failure_is_said_by_its_event_once_not_by_every_cycle() -> None:
    done = CycleDone("gpu:~/nb/", "timer", (), 0, 1.0, False)
    assert Printer(quiet_cycles=True).line(done) is None
    assert Printer(quiet_cycles=False).line(done) == (
        "gpu:~/nb/: timer sync incomplete: nothing new (1.00s)"
    )
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
