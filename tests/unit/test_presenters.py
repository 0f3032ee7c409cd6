"""The words the CLI and the sync log use for sync events."""

from __future__ import annotations

from nbterm.presenters import Printer
from nbterm.services.sync.events import CycleDone


def test_a_cycle_that_brought_files_says_how_many_and_how_much() -> None:
    done = CycleDone("gpu:~/nb/", "now", ("a.ipynb", "b.ipynb"), 2048, 0.31, True)
    line = Printer(quiet_cycles=False).line(done)
    assert line == "gpu:~/nb/: now sync done: 2 file(s), 2.0 kB in 0.31s"


def test_a_cycle_that_found_nothing_says_so() -> None:
    done = CycleDone("gpu:~/nb/", "now", (), 0, 0.05, True)
    assert Printer(quiet_cycles=False).line(done) == "gpu:~/nb/: now sync done: nothing new (0.05s)"
    assert Printer(quiet_cycles=True).line(done) is None


def test_a_failed_cycle_is_never_quiet() -> None:
    done = CycleDone("gpu:~/nb/", "timer", (), 0, 1.0, False)
    line = Printer(quiet_cycles=True).line(done)
    assert line == "gpu:~/nb/: timer sync incomplete: nothing new (1.00s)"
