"""Shared fixtures: an isolated home for every test, and real parts on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.locations import Paths, resolve_paths
from tests.harness.moto_ec2 import MotoEc2, start_moto
from tests.harness.remote import stop_remote_jupyter_sync
from tests.harness.sshd import SshServer, make_sshd

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point HOME, config, state and runtime directories at temporary folders.

    No test reads or writes the real home. The runtime directory is short (ssh control sockets
    have a path length limit). Both paths hold a space and a non-ASCII letter.
    """
    # Every test runs with a space and non-ASCII letters in nbterm's folders (macOS puts them
    # under "~/Library/Application Support"): a path quoted wrongly for one of its consumers
    # (rsync's -e, ssh_config, a remote shell) fails everywhere, not in one special test.
    home = tmp_path / "hôme dir"
    home.mkdir()
    runtime = Path(tempfile.mkdtemp(prefix="nbt é-"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("NBTERM_CONFIG", str(home / ".config" / "nbterm" / "config.toml"))
    monkeypatch.setenv("NBTERM_STATE_DIR", str(home / ".local" / "state" / "nbterm"))
    monkeypatch.setenv("NBTERM_RUNTIME_DIR", str(runtime))
    # boto3 must never find real credentials or reach AWS.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # A safety net: any EC2 call a test forgets to point at moto fails at once on loopback
    # (a closed port) instead of leaving the machine.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    yield home
    end_sentinels(home / ".local" / "state" / "nbterm")
    _remove_tree(runtime)


def end_sentinels(state_dir: Path) -> None:
    """The sentinels nbterm started in this test and that still run (a test that failed
    before it disarmed one): ended by the pid each one wrote, never by name."""
    folder = state_dir / "sentinels"
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            if b"nbterm.services.host.sentinel" in command:  # the pid is still that sentinel
                os.kill(int(entry.name), signal.SIGTERM)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def paths() -> Paths:
    return resolve_paths()


@pytest.fixture
def write_config(paths: Paths) -> Callable[[str], Path]:
    """Write the config file in use (mode 0600) and return its path."""

    def write(text: str) -> Path:
        paths.config_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.config_file.write_text(text)
        paths.config_file.chmod(0o600)
        return paths.config_file

    return write


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    """A real OpenSSH sshd on 127.0.0.1 (see tests/harness/sshd.py)."""
    server = make_sshd()
    try:
        server.start()
        yield server
    finally:
        # Jupyter servers the tests started on the "remote", and (for the dedicated test user)
        # its tmux server: ended by pid before sshd goes
        with contextlib.suppress(Exception):
            stop_remote_jupyter_sync(server, Path(tempfile.mkdtemp(prefix="nbt-")) / "known_hosts")
        server.remove()


@pytest.fixture
def sshd_host_toml(sshd: SshServer) -> Callable[[str], str]:
    """TOML for a plain SSH host that reaches the test sshd."""

    def host(name: str = "box") -> str:
        return (
            f"[hosts.{name}]\n"
            f'hostname = "{sshd.host}"\n'
            f"port = {sshd.port}\n"
            f'user = "{sshd.user}"\n'
            f'identity_file = "{sshd.client_key}"\n'
        )

    return host


@pytest.fixture
def trust_sshd(sshd: SshServer, paths: Paths) -> Callable[[str], None]:
    """Store the test sshd's host key in nbterm's known-hosts file under ``alias``."""

    def trust(alias: str) -> None:
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with paths.known_hosts.open("a") as handle:
            handle.write(sshd.known_hosts_line(alias))
        os.chmod(paths.known_hosts, 0o600)

    return trust


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEc2]:
    server = start_moto()
    try:
        yield server
    finally:
        server.server.stop()


@pytest.fixture
def moto_ec2(moto_server: MotoEc2) -> MotoEc2:
    """moto's EC2 server, with its state reset for this test."""
    moto_server.reset()
    return moto_server
