"""The journal (services/journal.py): every line kept with its host and time, 0600, bounded and
rotated, two processes appending at once never interleave, the guard's decisions each once at
their own time, the remote's bytes made safe where printed; ``nbterm log`` prints it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time

import pytest

from nbterm.cli.main import main
from nbterm.locations import Paths
from nbterm.presenters import Printer, journal_line
from nbterm.services import journal as journal_module
from nbterm.services.journal import Journal, host_of
from nbterm.services.remote.events import Decision, GuardDecisions, Notice


def test_lines_are_kept_with_host_and_time_in_a_private_file(paths: Paths) -> None:
    journal = Journal(paths)
    journal.append("gpu", "gpu: stopped after 62 idle minutes", at=1000.0)
    journal.append("lab", "lab: up")
    assert [e.host for e in journal.entries()] == ["gpu", "lab"]
    assert [e.text for e in journal.entries("gpu")] == ["gpu: stopped after 62 idle minutes"]
    assert journal.entries(since=2000.0)[0].host == "lab"
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.path.parent.stat().st_mode) == 0o700


def test_it_rotates_and_stays_bounded(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "LIMIT", 4096)
    journal = Journal(paths)
    for number in range(400):
        journal.append("gpu", f"line {number:04d} " + "x" * 40)
    sizes = journal.path.stat().st_size + journal.old.stat().st_size
    assert sizes <= 2 * 4096
    kept = [e.text[:9] for e in journal.entries()]
    assert kept[-1] == "line 0399" and kept == sorted(kept)  # the newest, in order


def test_two_processes_appending_at_once_never_interleave_a_line(paths: Paths) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom nbterm.locations import Paths\n"
        "from nbterm.services.journal import Journal\n"
        "p = Paths(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "j = Journal(p)\nfor n in range(500): j.append(sys.argv[4], sys.argv[4] * 300 + str(n))\n"
    )
    args = [str(paths.config_file), str(paths.state_dir), str(paths.runtime_dir)]
    writers = [subprocess.Popen([sys.executable, "-c", code, *args, name]) for name in "ab"]
    for writer in writers:
        assert writer.wait(60) == 0
    lines = Journal(paths).path.read_text().splitlines()
    assert len(lines) == 1000
    assert all(json.loads(line)["text"].startswith(json.loads(line)["host"] * 300)
               for line in lines)  # fmt: skip


def test_the_guards_decisions_each_once_at_their_own_time(paths: Paths) -> None:
    journal = Journal(paths)
    printer = Printer(journal)
    three_am = time.time() - 6 * 3600
    stop = "powering off: idle for 62 min (kernels idle)"
    decisions = (Decision(three_am - 3600, True, "busy: GPU 0 97%"),
                 Decision(three_am, False, stop))  # fmt: skip
    for _attach in range(3):  # every attach reads the same decisions: kept once
        printer(GuardDecisions("gpu", decisions))
    printer(Notice("gpu", "the idle guard stopped this instance at 03:12: idle for 62 min"))
    entries = journal.entries("gpu")
    assert [e.text for e in entries] == [
        "the idle guard: busy: GPU 0 97%",
        "the idle guard: powering off: idle for 62 min (kernels idle)",
        "gpu: the idle guard stopped this instance at 03:12: idle for 62 min",
    ]
    assert entries[1].at == three_am


def test_what_the_remote_said_is_made_safe_where_printed(paths: Paths) -> None:
    journal = Journal(paths)
    journal.append("gpu", "the idle guard: \x1b[2J\x1b]52;c;aGk=\x07[bold]x\udcff")
    line = journal_line(journal.entries()[0])
    assert "\x1b" not in line and "\x07" not in line and "[bold]x" in line
    assert host_of("gpu:~/notebooks/: received a.ipynb", {"gpu"}) == "gpu"
    assert host_of("config reloaded", {"gpu"}) == ""


def test_nbterm_log_prints_it_by_host_and_age(
    paths: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = Journal(paths)
    journal.append("gpu", "gpu: stopped: today's spending $20.10 of $20.00", at=time.time() - 7200)
    journal.append("lab", "lab: up", at=time.time() - 60)
    cap = capsys
    assert main(["log"]) == 0
    out = cap.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].endswith("gpu: stopped: today's spending $20.10 of $20.00")
    assert main(["log", "gpu"]) == 0
    assert "lab" not in cap.readouterr().out
    assert main(["log", "--since", "30m"]) == 0
    assert cap.readouterr().out.splitlines()[0].endswith("lab: up")
    assert main(["log", "nowhere"]) == 0
    assert "nothing in the journal of nowhere yet" in cap.readouterr().out
    assert main(["log", "--since", "yesterday"]) != 0
