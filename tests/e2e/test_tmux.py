"""nbterm in a real tmux session, keys sent with send-keys, the screen read with capture-pane."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.tmux import TmuxScreen, wait_for_file

pytestmark = pytest.mark.e2e

CONFIG = """
[hosts.gpu]
instance = "nb-gpu"
template = "gpu"

[hosts.lab-box]
hostname = "lab.example.org"

[templates.gpu]
ami = "ami-0abcdef1234567890"
instance_type = "g5.xlarge"
spot = true

[[sync]]
host = "gpu"
remote = "~/notebooks/"
local = "~/work/notebooks/"
"""


@pytest.fixture
def run_in_tmux(tmp_path: Path) -> Iterator[Callable[..., tuple[TmuxScreen, Path]]]:
    screens: list[TmuxScreen] = []

    def run(*args: str, width: int = 120, height: int = 36) -> tuple[TmuxScreen, Path]:
        rc_file = tmp_path / f"rc-{len(screens)}"
        argv = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "nbterm", *args])
        screen = TmuxScreen(
            f"{argv} 2>&1; echo $? > {rc_file}; sleep 30", width=width, height=height
        )
        screens.append(screen)
        screen.start()
        return screen, rc_file

    yield run
    for screen in screens:
        screen.close()


def test_the_cockpit_starts_shows_its_panes_and_quits(
    run_in_tmux: Callable[..., tuple[TmuxScreen, Path]], write_config: Callable[[str], Path]
) -> None:
    write_config(CONFIG)
    screen, rc_file = run_in_tmux()
    screen.wait_for(
        "Instances",
        "Tunnels",
        "Sync log",
        "lab.example.org",
        "g5.xlarge",
        "http://127.0.0.1:8157/",
        "q Quit",
        "? Help",
    )
    screen.send("?")
    screen.wait_for("nbterm keys")
    screen.send("q")
    screen.wait_gone("nbterm keys")
    screen.send("q")
    assert wait_for_file(rc_file) == "0"


def test_it_fits_80x24(
    run_in_tmux: Callable[..., tuple[TmuxScreen, Path]], write_config: Callable[[str], Path]
) -> None:
    write_config(CONFIG)
    screen, rc_file = run_in_tmux(width=80, height=24)
    screen.wait_for("lab-box", "Sync log", "q Quit")
    screen.send("q")
    assert wait_for_file(rc_file) == "0"


def test_first_run_offers_a_starter_config(
    run_in_tmux: Callable[..., tuple[TmuxScreen, Path]], isolated_home: Path
) -> None:
    screen, rc_file = run_in_tmux()
    screen.wait_for("Welcome to nbterm")
    screen.send("c")
    screen.wait_for("no hosts yet")
    assert (isolated_home / ".config" / "nbterm" / "config.toml").exists()
    screen.send("q")
    assert wait_for_file(rc_file) == "0"


def test_a_bad_config_stops_before_the_screen_with_exit_2(
    run_in_tmux: Callable[..., tuple[TmuxScreen, Path]], write_config: Callable[[str], Path]
) -> None:
    path = write_config('[hosts.lab]\nhostname = "lab"\nprot = 22\n')
    screen, rc_file = run_in_tmux()
    assert wait_for_file(rc_file) == "2"
    text = screen.capture()
    assert f"{path}:3:1: hosts.lab.prot: unknown key 'prot'; did you mean 'port'?" in text
    assert "Traceback" not in text


def test_it_reads_in_tmux_256_colours(
    run_in_tmux: Callable[..., tuple[TmuxScreen, Path]], write_config: Callable[[str], Path]
) -> None:
    """tmux without true colour: the screen still has its colours, from the 256-colour palette."""
    import re

    write_config(CONFIG)
    screen, rc_file = run_in_tmux()
    screen.wait_for("lab.example.org", "Sync log")
    coloured = screen.tmux("capture-pane", "-e", "-p", "-t", "main").stdout
    palette = set(re.findall(r"\x1b\[(?:3|4)8;5;(\d+)m", coloured))
    assert len(palette) >= 4, palette  # borders, highlight, text and background differ
    screen.send("q")
    assert wait_for_file(rc_file) == "0"
