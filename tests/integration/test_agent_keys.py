"""A passphrase-protected key that lives in ssh-agent: nbterm's own SSH (asyncssh) uses it the way
OpenSSH does with ``IdentityFile`` + ``IdentitiesOnly``: the agent's copy of that key, no other."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import AuthFailedError, SshTarget, close_quietly, connect, run
from tests.harness.procs import end_process
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd
PASSPHRASE = "correct horse battery"


def _key(folder: Path, name: str, passphrase: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", str(key)],
        check=True,
    )
    return key


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real ssh-agent of this test's own (ended by pid); its environment for the client."""
    socket_path = Path("/tmp") / f"nbt-agent-{os.getpid()}-{id(tmp_path)}.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if socket_path.exists():
                break
            time.sleep(0.05)
        yield {"SSH_AUTH_SOCK": str(socket_path)}
    finally:
        end_process(proc)
        socket_path.unlink(missing_ok=True)


def _ssh_add(key: Path, env: dict[str, str], folder: Path) -> None:
    askpass = folder / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
    askpass.chmod(0o700)
    subprocess.run(
        ["ssh-add", str(key)],
        env={**os.environ, **env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )


def _authorize(sshd: SshServer, key: Path) -> None:
    authorized = sshd.client_key.parent / "authorized_keys"
    authorized.write_text(authorized.read_text() + key.with_suffix(".pub").read_text())


def _target(sshd: SshServer, key: Path) -> SshTarget:
    return SshTarget("box", sshd.host, sshd.port, "box", sshd.user, key)


def _known(sshd: SshServer, folder: Path) -> KnownHosts:
    known = KnownHosts(folder / "known_hosts")
    known.add("box", sshd.host_key_pub)
    return known


def _loaded_key(sshd: SshServer, agent: dict[str, str], folder: Path) -> Path:
    """An authorized, passphrase-protected key, held by ``agent``."""
    key = _key(folder, "encrypted_ed25519", PASSPHRASE)
    _authorize(sshd, key)
    _ssh_add(key, agent, folder)
    return key


async def test_an_encrypted_key_held_by_the_agent_logs_in(
    sshd: SshServer,
    agent: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = _loaded_key(sshd, agent, tmp_path)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent["SSH_AUTH_SOCK"])
    link = await connect(_target(sshd, key), _known(sshd, tmp_path))
    try:
        status, out, _ = await run(link, "echo in")
        assert (status, out.strip()) == (0, "in")
    finally:
        close_quietly(link)


async def test_only_the_configured_key_is_offered_from_the_agent(
    sshd: SshServer,
    agent: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IdentitiesOnly: the agent holds an authorized key, but the host names another one (not
    authorized): nbterm must not log in with the agent's other key."""
    authorized = _key(tmp_path, "authorized_ed25519", PASSPHRASE)
    _authorize(sshd, authorized)
    _ssh_add(authorized, agent, tmp_path)
    configured = _key(tmp_path, "configured_ed25519", PASSPHRASE)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent["SSH_AUTH_SOCK"])
    with pytest.raises(AuthFailedError) as caught:
        close_quietly(await connect(_target(sshd, configured), _known(sshd, tmp_path)))
    assert "ssh-add" in str(caught.value)  # it is encrypted and the agent lacks it: say how


async def test_an_encrypted_key_without_an_agent_says_how_to_load_it(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _key(tmp_path, "encrypted_ed25519", PASSPHRASE)
    _authorize(sshd, key)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AuthFailedError) as caught:
        close_quietly(await connect(_target(sshd, key), _known(sshd, tmp_path)))
    message = str(caught.value)
    assert "protected by a passphrase" in message
    assert f"ssh-add {key}" in message


async def test_identity_agent_names_the_agent_to_ask(
    sshd: SshServer,
    agent: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1Password or Secretive: the agent is not $SSH_AUTH_SOCK but the host's identity_agent."""
    key = _loaded_key(sshd, agent, tmp_path)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    target = SshTarget(
        "box", sshd.host, sshd.port, "box", sshd.user, key,
        identity_agent=Path(agent["SSH_AUTH_SOCK"]),
    )  # fmt: skip
    close_quietly(await connect(target, _known(sshd, tmp_path)))
