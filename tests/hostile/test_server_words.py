"""The SSH server's own words: its auth banner (sshd's ``Banner``, often /etc/issue.net) and its
version string (``VersionAddendum``), both the remote's to choose. nbterm never shows either;
a banner that is not UTF-8 must not cost the connection (asyncssh refused it: "Invalid userauth
banner", while OpenSSH's client connects), and neither reaches the terminal through ``status``
or through rsync's ssh.

Invariants: nbterm connects, ``nbterm status`` prints no ESC byte and no word of the banner, a
sync cycle over OpenSSH's ssh completes and its events carry no ESC byte.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.remote.host_keys import HostKeyQuestion, KnownHosts
from nbterm.services.remote.ssh import (
    HostKeyRejectedError,
    HostKeyUnknownError,
    SshTarget,
    close_quietly,
    connect,
    run,
    target_for,
)
from nbterm.services.remote.ssh_config import write_ssh_config
from nbterm.services.sync.engine import SyncEngine
from tests.harness.remote import remote_config_text, sync_rule
from tests.harness.sshd import SshServer, make_sshd
from tests.harness.sync import Recorder

pytestmark = pytest.mark.sshd

BANNER = b"Willkommen \xe9 \x1b]2;owned\x07\x1b[2J [/] [link=https://evil.example/]login[/link]\n"
VERSION = "\x1b]2;pwn\x07 [/]"
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


@pytest.fixture
def talkative_sshd() -> Iterator[SshServer]:
    server = make_sshd()
    banner = server.workdir / "banner"
    banner.write_bytes(BANNER)
    banner.chmod(0o644)
    text = server.config_file.read_text() + f"Banner {banner}\nVersionAddendum {VERSION}\n"
    server.config_file.write_text(text)
    server.start()
    try:
        yield server
    finally:
        server.remove()


def clean(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert "owned" not in text and "pwn" not in text and "evil" not in text, text


async def test_a_banner_that_is_not_utf8_and_a_hostile_version_cost_nothing(
    talkative_sshd: SshServer,
    paths: Paths,
    write_config: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    sshd = talkative_sshd
    folder = f"nbterm-banner-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "local nb"
    config = load_config(write_config(remote_config_text(sshd) + sync_rule(folder, local)))
    known = KnownHosts(paths.known_hosts)
    known.add("box", sshd.host_key_pub)
    os.chmod(paths.known_hosts, 0o600)
    link = await connect(target_for(config.hosts["box"], config), known)
    try:
        assert await run(link, "echo ok") == (0, "ok\n", "")
        await run(link, f"mkdir -p {folder} && cat > {folder}/a.ipynb", input=NOTEBOOK)
        status = subprocess.run(
            [sys.executable, "-m", "nbterm", "status"],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        clean(status.stdout + status.stderr)
        assert "box" in status.stdout and "Traceback" not in status.stderr
        recorder = Recorder()
        engine = SyncEngine(config.sync[0], paths, write_ssh_config(config, paths), recorder,
                            io_timeout=10)  # fmt: skip
        done = await engine.cycle()
        assert done.ok, recorder.events
        assert (local / "a.ipynb").read_text() == NOTEBOOK
        said = " ".join(str(event) for event in recorder.events)
        assert "owned" not in said and "Willkommen" not in said, said
    finally:
        await run(link, f"rm -rf {folder}; true")
        close_quietly(link)


async def test_a_new_instance_on_an_old_address_is_asked_about_never_trusted_by_address(
    sshd: SshServer, tmp_path: Path
) -> None:
    """EC2 hands a stopped instance's address to another: nbterm pins a host key per instance id
    (the HostKeyAlias), so the key trusted for i-...aaa says nothing of i-...bbb on the same
    address and port."""
    known = KnownHosts(tmp_path / "known_hosts")
    old = SshTarget(name="gpu", address=sshd.host, port=sshd.port, alias="i-0aaaaaaaaaaaaaaaa",
                    user=sshd.user, identity_file=sshd.client_key)  # fmt: skip
    known.add(old.alias, sshd.host_key_pub)
    link = await connect(old, known)
    close_quietly(link)
    new = dataclasses.replace(old, alias="i-0bbbbbbbbbbbbbbbb")
    with pytest.raises(HostKeyUnknownError, match="not known yet"):
        await connect(new, known)  # no one to ask: refused
    asked: list[HostKeyQuestion] = []

    async def refuse(question: HostKeyQuestion) -> bool:
        asked.append(question)
        return False

    with pytest.raises(HostKeyRejectedError):
        await connect(new, known, refuse)
    assert [q.alias for q in asked] == ["i-0bbbbbbbbbbbbbbbb"]
    assert not known.knows(new.alias)
