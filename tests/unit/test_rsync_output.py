"""rsync's itemized and progress output, parsed from recordings of real rsync 3.x runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbterm.services.sync.rsync_output import (
    Item,
    ProgressLine,
    exit_message,
    parse_output,
    split_segments,
    unescape,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "rsync"


def items(name: str) -> list[Item]:
    return [x for x in parse_output((DATA / name).read_bytes()) if isinstance(x, Item)]


def test_first_pull_lists_every_received_file_with_its_real_name() -> None:
    received = [item for item in items("first-pull.out") if item.received]
    assert [(item.path, item.size, item.new) for item in received] == [
        ("big.ipynb", 3000000, True),
        ("new\nline.ipynb", 58, True),
        ("plain.ipynb", 58, True),
        ("tab\there.ipynb", 58, True),
        ("sub dir/with space.ipynb", 58, True),
        ("sub dir/ünïcødé ☃.ipynb", 58, True),
    ]
    directories = [item.path for item in items("first-pull.out") if item.code.startswith("cd")]
    assert directories == ["./", "sub dir/"]


def test_progress_segments_between_carriage_returns() -> None:
    progress = [
        x
        for x in parse_output((DATA / "first-pull.out").read_bytes())
        if isinstance(x, ProgressLine)
    ]
    assert progress[0] == ProgressLine(32768, 1, "0.00kB/s")
    assert progress[-1].bytes == 3000290
    assert progress[-1].percent == 100


def test_an_update_and_a_remote_deletion() -> None:
    parsed = items("update-and-remote-delete.out")
    assert [(item.code, item.path) for item in parsed] == [
        ("*deleting", "sub dir/with space.ipynb"),
        (">f.st......", "plain.ipynb"),
    ]
    assert parsed[0].deleted
    assert not parsed[0].received
    assert parsed[1].received
    assert not parsed[1].new


def test_unescape_octal_and_keep_other_backslashes() -> None:
    assert unescape(rb"a\#012b") == "a\nb"
    assert unescape(rb"back\slash \#134#") == "back\\slash \\#"
    assert unescape("ü".encode()) == "ü"
    assert unescape(b"\xff") == "\udcff"  # kept as os.fsdecode keeps it: the name still opens


def test_split_keeps_the_unfinished_tail() -> None:
    segments, rest = split_segments(b">f+++++++++ 1 a\r  10  5%  1.00kB/s  0:00:00\r>f++")
    assert segments == [b">f+++++++++ 1 a", b"  10  5%  1.00kB/s  0:00:00"]
    assert rest == b">f++"


def test_exit_codes_have_advice() -> None:
    assert "vanished" in exit_message(24)
    assert "ssh failed" in exit_message(255)
    dropped = "rsync: connection unexpectedly closed (59 bytes received so far) [generator]\n"
    assert "closed mid-transfer" in exit_message(255, dropped)  # a killed ControlMaster
    refused = "ssh: connect to host 10.0.0.9 port 22: Connection refused\n" + dropped
    assert "ssh failed" in exit_message(255, refused)
    # the same drop, seen first by rsync's reader (CI saw it: the words were "broke")
    stream = "rsync error: error in rsync protocol data stream (code 12) at io.c(285)\n" + dropped
    assert "closed mid-transfer" in exit_message(12, stream)
    assert "ControlMaster" not in exit_message(12, stream)  # ssh said nothing: not claimed
    assert "closed mid-transfer" not in exit_message(12, refused)
    assert "next cycle" not in exit_message(12) + exit_message(30)  # one-shot sync has none
    assert "I/O timeout" in exit_message(30)
    assert exit_message(99) == "rsync failed with exit code 99"
    assert "code 23" in (DATA / "partial-23.err").read_text()


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("rsync  version 3.5.0  protocol version 32", True),
        ("rsync  version v3.2.7  protocol version 31", True),
        ("rsync  version 3.1.3  protocol version 31", True),
        ("rsync  version 3.1.2  protocol version 31", False),
        ("rsync  version 2.6.9  protocol version 29", False),  # macOS before Sequoia
        ("openrsync: protocol version 29", False),  # macOS Sequoia and later
        ("something else entirely", True),  # unknown: let it try
    ],
)
def test_the_local_rsync_version_is_checked(line: str, ok: bool) -> None:
    from nbterm.services.sync.rsync_version import problem_with_version

    problem = problem_with_version(line)
    assert (problem is None) == ok
    if problem:
        assert "brew install rsync" in problem
