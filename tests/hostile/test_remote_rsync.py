"""A malicious ``rsync`` earlier on the remote's PATH (put there by the remote user's
``~/.bashrc``, which bash reads for every command sshd runs): what argv it is handed, and what
happens when it answers with junk.

Invariants: the remote rsync gets the arguments nbterm chose and nothing built from the
remote's file names (a file named ``$(touch PWNED).ipynb`` stays a name); an rsync that prints
terminal escapes, markup and bytes that are not UTF-8 and fails is a sync failure said in safe
words, and the local notebook is untouched (byte for byte).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from nbterm.presenters import words
from nbterm.services.sync.events import SyncFailed
from tests.harness.sshd import TEST_USER, SshServer
from tests.harness.sync import Recorder, notebook
from tests.harness.world import World

pytestmark = pytest.mark.sshd

EVIL_BIN = "nbterm-evil-bin"


@contextlib.contextmanager
def remote_rsync(sshd: SshServer, script: str) -> Iterator[None]:
    """``script`` as the first ``rsync`` on the remote user's PATH, for as long as the block."""
    if sshd.user != TEST_USER:
        pytest.skip("writes the remote user's ~/.bashrc: only done to the dedicated test user")
    folder = sshd.home / EVIL_BIN
    folder.mkdir(exist_ok=True)
    program = folder / "rsync"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    bashrc = sshd.home / ".bashrc"
    old = bashrc.read_bytes()
    bashrc.write_bytes(f'export PATH="$HOME/{EVIL_BIN}:$PATH"\n'.encode() + old)
    try:
        yield
    finally:
        bashrc.write_bytes(old)
        program.unlink()
        folder.rmdir()


def test_the_remote_rsync_gets_the_arguments_nbterm_chose(world: World) -> None:
    world.config()
    world.remote.write("$(touch PWNED).ipynb", notebook("a"))
    world.remote.write("plain.ipynb", notebook("b"))
    argv_file = world.sshd.home / "nbterm-evil-argv"
    script = f'printf "%s\\n" "$@" > "$HOME/{argv_file.name}"\nexec /usr/bin/rsync "$@"\n'
    try:
        with remote_rsync(world.sshd, script):
            done = asyncio.run(world.engine(Recorder()).cycle())
        argv = argv_file.read_text().splitlines()
    finally:
        argv_file.unlink(missing_ok=True)
    assert done.ok
    assert (world.local / "$(touch PWNED).ipynb").read_text() == notebook("a")
    assert not (world.sshd.home / "PWNED").exists()
    assert argv[0] == "--server" and "--sender" in argv
    assert argv[-1] == f"{world.remote.folder}/", argv  # the rule's folder, and only it
    assert not any("PWNED" in arg or "plain" in arg for arg in argv)


def test_an_rsync_that_answers_junk_fails_in_safe_words_and_loses_nothing(world: World) -> None:
    world.config()
    world.remote.write("kept.ipynb", notebook("remote"))
    engine = world.engine(Recorder())
    assert asyncio.run(engine.cycle()).ok
    local = world.local / "kept.ipynb"
    local.write_text(notebook("my local edit"))
    before = local.read_bytes()
    junk = (
        "printf '\\033]2;owned\\007\\033[2J [/] [link=https://evil.example/]x caf\\351\\n' >&2\n"
        "printf 'garbage that is not the rsync protocol\\n'\nexit 12\n"
    )
    recorder = Recorder()
    with remote_rsync(world.sshd, junk):
        done = asyncio.run(world.engine(recorder, keep_config=True).cycle())
    assert not done.ok
    assert local.read_bytes() == before
    failed = recorder.of(SyncFailed)
    assert failed, recorder.events
    said = " ".join(words(event) or "" for event in recorder.events)
    assert "sync failed" in said
    assert "\x1b" not in said and "\x07" not in said and "\udce9" not in said, said
