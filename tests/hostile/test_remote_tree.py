"""A hostile remote folder against the real sshd and rsync: names with escape sequences and
newlines, a .git folder and a .git file, git pathspec magic, nbterm's own names, symlinks to
local paths, a fifo and an oversized notebook, with a rule whose include is as broad as it gets
(``*``) and git commits on.

What it checks: nothing is written outside the local folder or into .git or .nbterm-*; the
user's repository and untracked files stay theirs; every line the user reads is inert; the
ordinary notebooks keep arriving.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from nbterm.presenters import Printer
from nbterm.services.sync.events import Committed
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

pytestmark = pytest.mark.sshd

HOSTILE_SCRIPT = r"""
set -e
cd "$1"
mkdir -p .git/hooks sub/.git nested
printf '[core]\n\tfsmonitor = "touch /tmp/nbterm-pwned-%s"\n' "$2" > .git/config
printf '#!/bin/sh\ntouch /tmp/nbterm-pwned-%s\n' "$2" > .git/hooks/pre-commit
printf 'gitdir: /tmp/nbterm-elsewhere-%s/.git\n' "$2" > nested/.git
printf 'x' > sub/.git/HEAD
mkdir -p .nbterm-backups/planted && printf 'x' > .nbterm-backups/planted/a.ipynb
printf '%s' "$3" > "$(printf 'title\033]2;PWNED\033\\.ipynb')"
printf '%s' "$3" > "$(printf 'clip\033]52;c;ZWNobyBwd25lZA==\007.ipynb')"
printf '%s' "$3" > "$(printf 'two\nlines.ipynb')"
printf '%s' "$3" > ':(glob)*.ipynb'
printf '%s' "$3" > ':(top,glob)**'
ln -sf /etc/passwd passwd-link.ipynb
ln -sf "$4" local-link
mkfifo fifo.ipynb
head -c 3000000 /dev/zero > huge.ipynb
printf '%s' "$3" > plain.ipynb
"""


def test_a_hostile_remote_folder(world: World, tmp_path: Path) -> None:
    marker = tmp_path.name[-12:].replace("/", "_")
    outside = tmp_path / "outside"
    outside.mkdir()
    world.remote.sh(
        f"bash -s {world.remote.folder} {marker} '{notebook('x')}' {outside}",
        HOSTILE_SCRIPT.encode(),
    )
    world.local.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(world.local)], check=True)
    user_config = (world.local / ".git" / "config").read_bytes()
    (world.local / "mine.ipynb").write_text(notebook("the user's own, untracked"))
    before_outside = sorted(outside.iterdir())
    recorder = Recorder()
    engine = world.engine(recorder, include=("*",), git_commit=True, max_file_mb=1)
    done = asyncio.run(engine.cycle())
    # nothing of the remote's reached .git, and no hook or fsmonitor ran
    assert (world.local / ".git" / "config").read_bytes() == user_config
    assert not (world.local / ".git" / "hooks" / "pre-commit").exists()
    assert not Path(f"/tmp/nbterm-pwned-{marker}").exists()
    assert not (world.local / "nested" / ".git").exists()
    assert not (world.local / "sub" / ".git").exists()
    assert not (world.local / ".nbterm-backups" / "planted").exists()
    # nothing outside the folder, no symlink followed or made, no fifo, no oversized file
    assert sorted(outside.iterdir()) == before_outside
    assert not (world.local / "passwd-link.ipynb").exists()
    assert not os.path.lexists(world.local / "local-link")
    assert not (world.local / "fifo.ipynb").exists()
    assert not (world.local / "huge.ipynb").exists()
    # the ordinary notebook and the odd (but harmless) names arrive as themselves
    assert (world.local / "plain.ipynb").read_text() == notebook("x")
    assert (world.local / "two\nlines.ipynb").exists()
    assert (world.local / ":(glob)*.ipynb").exists()
    # git: only what nbterm placed, named literally; the user's untracked file stays untracked
    tracked = subprocess.run(
        ["git", "-C", str(world.local), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.split(b"\0")
    assert b"mine.ipynb" not in tracked
    assert b":(glob)*.ipynb" in tracked
    commits = [e for e in recorder.of(Committed) if isinstance(e, Committed)]
    assert commits
    # every line the user reads is inert
    printer = Printer()
    lines = [line for line in map(printer.line, recorder.events) if line]
    text = "\n".join(lines)
    for char in ("\x1b", "\x07", "\x9b"):
        assert char not in text
    assert not any(line.startswith("lines.ipynb") for line in text.splitlines())
    assert "refused" in text  # the .git and .nbterm-* names were said, not silently dropped
    assert "max_file_mb" in text
    assert not done.ok  # refused names are this cycle's unfinished business, and say so
