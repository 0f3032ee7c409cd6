"""nbterm killed -9 in the middle of `up` and `launch`, asserted from EC2's side (moto).

The invariant (DESIGN.md, "A host's life"): every path that starts an instance ends with it in
use, guarded or stopped, and a killed process is one of those paths. Between the start (or the
launch) and the moment the idle guard is armed on the instance, only the laptop knows the
instance must not run unwatched: its sentinel (services/host/sentinel.py) stops what a killed
nbterm started, terminates what it launched, and leaves alone what is guarded.

SSH that never answers holds nbterm in the window (the host's port is a closed one); each case
kills the real `nbterm` process with SIGKILL at a few delays after EC2 shows the start, and
counts the end states.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host import sentinel
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import close_quietly, connect, target_for
from tests.harness.guard import guard_pid
from tests.harness.moto_ec2 import MotoEc2, stopped_instance
from tests.harness.procs import descendants, free_port
from tests.harness.remote import ec2_config_text, end_guard
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

KILL_DELAYS = (0.0, 0.6, 1.5)
"""Seconds after EC2 shows the start: before, during and after the state wait."""
SETTLE = 45.0
"""How long the end state may take to show (a stop in moto takes a few describe calls)."""


def _config(
    moto_ec2: MotoEc2,
    sshd: SshServer,
    write_config: Callable[[str], Path],
    *,
    ssh_answers: bool,
    template: str = "",
) -> LoadedConfig:
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=free_port(),
                           template=template)  # fmt: skip
    if not ssh_answers:  # nbterm waits for SSH: the window a kill must not leave unwatched
        text = text.replace(f'address = "127.0.0.1"\nport = {sshd.port}\n',
                            f'address = "127.0.0.1"\nport = {free_port()}\n')  # fmt: skip
    return load_config(write_config(text))


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The nbterm processes a case starts, and anything left below them, ended by pid."""
    procs: list[subprocess.Popen[str]] = []
    below: list[int] = []
    yield procs
    for proc in procs:
        below += descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _nbterm(procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbterm", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    procs.append(proc)
    return proc


def _kill_when(proc: subprocess.Popen[str], seen: Callable[[], bool], delay: float) -> str:
    """SIGKILL ``proc`` ``delay`` seconds after ``seen()`` first holds; its output so far."""
    deadline = time.monotonic() + 60
    while not seen():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "EC2 never showed the start"
        time.sleep(0.05)
    time.sleep(delay)
    assert proc.poll() is None, f"nbterm ended by itself: {proc.communicate()[0]}"
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    return out


def _settled(look: Callable[[], str], wanted: set[str]) -> str:
    deadline = time.monotonic() + SETTLE
    state = look()
    while state not in wanted and time.monotonic() < deadline:
        time.sleep(0.3)
        state = look()
    return state


def _sentinel_log(paths: Paths) -> str:
    """The sentinels' log, once every sentinel has ended (EC2 may show the end state a
    moment before the sentinel writes it down)."""
    folder = sentinel.sentinels_dir(paths)
    deadline = time.monotonic() + SETTLE
    while folder.is_dir() and any(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return (paths.state_dir / "sentinel.log").read_text()


def _state(ec2: Ec2, instance_id: str) -> str:
    found = ec2.get(instance_id)
    return found.state if found else "gone"


@pytest.mark.parametrize("delay", KILL_DELAYS)
def test_an_up_killed_before_the_guard_is_armed_leaves_the_instance_stopped(
    delay: float, moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path],
    paths: Paths, started: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    """Before: `running`, with nothing on the laptop or the instance to stop it."""
    config = _config(moto_ec2, sshd, write_config, ssh_answers=False)
    instance_id = stopped_instance(config)
    ec2 = Ec2(config.aws)
    proc = _nbterm(started, "up", "gpu")
    out = _kill_when(proc, lambda: _state(ec2, instance_id) != "stopped", delay)
    state = _settled(lambda: _state(ec2, instance_id), {"stopped"})
    assert state == "stopped", out
    now = ec2.get(instance_id)
    assert now is not None
    assert sentinel.WHY in (now.stopper() or ""), now  # every nbterm says who and why
    log = _sentinel_log(paths)
    assert f"{instance_id} is stopped" in log, log


@pytest.mark.parametrize("delay", KILL_DELAYS[:2])
def test_a_launch_killed_before_it_is_guarded_leaves_nothing_running(
    delay: float, moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path],
    paths: Paths, started: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    """Before: a new instance `running` for good, launched by nobody anyone remembers."""
    config = _config(moto_ec2, sshd, write_config, ssh_answers=False)
    ec2 = Ec2(config.aws)

    def live() -> list[str]:
        return [i.state for i in ec2.managed([]) if i.state not in ("terminated", "shutting-down")]

    proc = _nbterm(started, "launch", "gpu")
    out = _kill_when(proc, lambda: bool(live()), delay)
    deadline = time.monotonic() + SETTLE
    while live() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert live() == [], out
    log = _sentinel_log(paths)
    assert "nothing of this launch is left running" in log, log


def test_an_up_killed_after_the_guard_is_armed_leaves_it_running_and_guarded(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    started: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    """The guard is the owner from there: the sentinel must not stop what it watches (the
    guard stops it after its lease runs out and the machine is idle)."""
    config = _config(moto_ec2, sshd, write_config, ssh_answers=True,
                     template="idle_stop_minutes = 30\n")  # fmt: skip
    instance_id = stopped_instance(config)
    ec2 = Ec2(config.aws)
    target = target_for(config.hosts["gpu"], config, address="127.0.0.1", alias=instance_id)

    async def armed() -> int | None:
        if not KnownHosts(paths.known_hosts).knows(instance_id):
            return None
        link = await connect(target, KnownHosts(paths.known_hosts), None)
        try:
            return await guard_pid(link)
        finally:
            close_quietly(link)

    fingerprint = asyncssh.import_public_key(sshd.host_key_pub).get_fingerprint()
    proc = _nbterm(started, "up", "gpu", "--accept-host-key", fingerprint)
    try:
        out = _kill_when(proc, lambda: asyncio.run(armed()) is not None, 0.2)
        time.sleep(3.0)  # a sentinel that acts does so within a second
        assert _state(ec2, instance_id) == "running", out
        assert asyncio.run(armed()) is not None, "the guard is gone"
        assert not (paths.state_dir / "sentinel.log").exists()
    finally:

        async def off() -> None:
            link = await connect(target, KnownHosts(paths.known_hosts), None)
            try:
                await end_guard(link)
            finally:
                close_quietly(link)

        with contextlib.suppress(Exception):
            asyncio.run(off())
