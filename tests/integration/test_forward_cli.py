"""`nbterm forward HOST REMOTE_PORT [LOCAL_PORT]`: an ad hoc port, as a person runs it.

Against the loopback sshd, with the remote's servers of ``tests.harness.services``. The
invariants: the port listens on 127.0.0.1 only, says truly what the remote's port answers,
heals across an sshd restart on the same local port, and nothing listens once it is closed.
"""

from __future__ import annotations

import functools
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.harness.procs import listening_addresses
from tests.harness.remote import remote_config_text
from tests.harness.services import RemoteServices, remote_services
from tests.harness.sshd import SshServer
from tests.integration import test_remote_cli
from tests.integration.test_remote_cli import Running, nbterm

pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def services() -> Iterator[RemoteServices]:
    with remote_services() as running:
        yield running


@pytest.fixture
def fingerprint(sshd: SshServer) -> str:
    return str(asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint())


@pytest.fixture
def configured(sshd: SshServer, write_config: Callable[[str], Path]) -> Path:
    return write_config(remote_config_text(sshd))


running = test_remote_cli.running  # its processes, ended by pid after each test


@pytest.fixture
def forwarding(request: pytest.FixtureRequest) -> Callable[..., Running]:
    """`nbterm forward ...` in the background (test_remote_cli's reader, Ctrl-C and cleanup)."""
    return functools.partial(request.getfixturevalue("running"), command="forward")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _page(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as answer:
        return bytes(answer.read())


def test_a_forward_serves_heals_and_closes(
    configured: Path,
    fingerprint: str,
    services: RemoteServices,
    sshd: SshServer,
    forwarding: Callable[..., Running],
) -> None:
    wanted = _free_port()
    run = forwarding("box", str(services.http), str(wanted), "--accept-host-key", fingerprint)
    said = run.wait_for(rf"box: the remote's port {services.http} on http://127\.0\.0\.1:(\d+)/;")
    assert int(said.group(1)) == wanted
    run.wait_for(rf"box: port {services.http}: answers HTTP 200")
    assert _page(wanted) == b"tensorboard-ish page\n"
    assert listening_addresses(wanted) == {"127.0.0.1"}

    for restart in range(2):  # the same local port after each restart: a browser tab goes on
        sshd.restart()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert _page(wanted) == b"tensorboard-ish page\n", restart
                break
            except OSError:
                assert time.monotonic() < deadline, (restart, run.lines)
                time.sleep(0.2)
        assert listening_addresses(wanted) == {"127.0.0.1"}, restart

    code, out = run.interrupt()
    assert code == 0, out
    assert f"box: closed the forward of port {services.http}" in out
    assert listening_addresses(wanted) == set()
    assert "Traceback" not in out


def test_a_taken_port_takes_the_next_and_an_empty_remote_port_is_said(
    configured: Path,
    fingerprint: str,
    services: RemoteServices,
    forwarding: Callable[..., Running],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        run = forwarding("box", str(services.closed), str(busy), "--accept-host-key", fingerprint)
        said = run.wait_for(r"on http://127\.0\.0\.1:(\d+)/ \(port (\d+) was taken\)")
        assert int(said.group(2)) == busy
        assert int(said.group(1)) != busy
        run.wait_for(rf"box: port {services.closed}: nothing listens there \(yet\)")
        code, _out = run.interrupt()
        assert code == 0


def test_an_unknown_host_key_forwards_nothing(configured: Path, services: RemoteServices) -> None:
    wanted = _free_port()
    done = nbterm("forward", "box", str(services.http), str(wanted))
    assert done.returncode == 1
    assert "its host key is not known yet" in done.stderr
    assert "Traceback" not in done.stderr
    assert listening_addresses(wanted) == set()


def test_a_port_number_is_checked(configured: Path) -> None:
    done = nbterm("forward", "box", "70000")
    assert done.returncode == 2
    assert "not a TCP port (1-65535): '70000'" in done.stderr
