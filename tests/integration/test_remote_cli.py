"""`nbterm up`, `status`, `forget-host` and `stop-jupyter` as a person or a script runs them."""

from __future__ import annotations

import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import asyncssh
import pytest

from nbterm.locations import Paths
from tests.harness.procs import end_process
from tests.harness.remote import api_status, remote_config_text
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


@pytest.fixture
def fingerprint(sshd: SshServer) -> str:
    return str(asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint())


@pytest.fixture
def configured(sshd: SshServer, write_config: Callable[[str], Path]) -> Path:
    return write_config(remote_config_text(sshd, local_port=29157))


def nbterm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbterm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class Running:
    """`nbterm up` in the background, its output read line by line."""

    def __init__(self, *args: str, command: str = "up") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nbterm", command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                match = re.search(pattern, line)
                if match:
                    return match
            if selector.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if not line:
                    break
                self.lines.append(line.rstrip("\n"))
        raise AssertionError(f"{pattern!r} not printed within {timeout}s: {self.lines}")

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=20)
        return self.proc.returncode, out


@pytest.fixture
def running() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*args: str, command: str = "up") -> Running:
        run = Running(*args, command=command)
        started.append(run)
        return run

    yield start
    for run in started:
        end_process(run.proc)


def test_up_prints_a_working_url_and_ctrl_c_leaves_jupyter_running(
    configured: Path, fingerprint: str, running: Callable[..., Running], paths: Paths
) -> None:
    up = running("box", "--accept-host-key", fingerprint)
    up.wait_for(r"box: trusted host key ssh-ed25519 SHA256:\S+ \(stored as 'box'\)")
    url = up.wait_for(r"box: open (http://127\.0\.0\.1:\d+/\?token=\S+)").group(1)
    parsed = urlparse(url)
    assert parsed.port is not None
    token = parse_qs(parsed.query)["token"][0]
    assert api_status(parsed.port, token)["kernels"] == 0
    up.wait_for(r"box: tunnel up \(\d+\.\d ms, 0 kernel\(s\)\)")

    status = nbterm("status")
    assert status.returncode == 0, status.stderr
    said = f"tunnel http://127.0.0.1:{parsed.port}/ (nbterm up, pid {up.proc.pid}; listening)"
    assert said in status.stdout
    assert "jupyter: running (pid" in status.stdout
    assert token not in status.stdout

    code, out = up.interrupt()
    assert code == 0
    assert "tunnel closed; Jupyter keeps running on the remote" in out
    after = nbterm("status")
    assert "no tunnel" in after.stdout
    assert "jupyter: running" in after.stdout


def test_a_wrong_fingerprint_connects_nowhere_and_stores_nothing(
    configured: Path, paths: Paths
) -> None:
    done = nbterm("up", "box", "--accept-host-key", "SHA256:not-the-right-one")
    assert done.returncode == 1
    assert "was not trusted; not connecting" in done.stderr
    assert not paths.known_hosts.exists() or "box" not in paths.known_hosts.read_text()


def test_without_a_terminal_an_unknown_key_needs_the_flag(configured: Path) -> None:
    done = nbterm("up", "box")
    assert done.returncode == 1
    assert "its host key is not known yet" in done.stderr
    assert "Traceback" not in done.stderr


def test_forget_host_then_stop_jupyter(configured: Path, fingerprint: str, paths: Paths) -> None:
    first = nbterm("stop-jupyter", "box", "--accept-host-key", fingerprint)
    assert first.returncode == 0, first.stderr
    assert "box" in paths.known_hosts.read_text()
    forgot = nbterm("forget-host", "box")
    assert forgot.stdout.strip() == "forgot 1 host key(s) of box; the next connection asks again"
    assert "box" not in paths.known_hosts.read_text()
    stopped = nbterm("stop-jupyter", "box", "--accept-host-key", fingerprint)
    assert stopped.returncode == 0
    # the first call stopped whatever ran (tests/integration/test_jupyter_login_shell.py checks
    # that stopping a running server says so): nothing is left to stop now
    assert stopped.stdout.strip() == "box: no Jupyter of nbterm's was running"
    assert "jupyter: not running" in nbterm("status").stdout
