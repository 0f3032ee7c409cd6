"""Zero to notebook, and the safety nets that do not need the laptop: one story, end to end.

moto's EC2 and the loopback sshd playing the instance, driven through the cockpit's controller
as a person drives it:

1. a template with only an AMI and a type, no key pair: nbterm makes and imports its own key
   and launches with it (the sshd lets that key in, as cloud-init would);
2. `u`: the machine has no Jupyter; the person says yes, JupyterLab is installed on the way
   (offline, from tests/setup.sh's wheelhouse) and the host is up;
3. AWS interrupts the spot instance (its reason injected: moto stops instances as a user would)
   and its SSH goes; capacity comes back; the host is up again by itself, same port and URL;
4. the person quits: with Jupyter idle and the lease run out, the guard on the instance powers
   it off (injected: it asks moto to stop the instance) and moto says stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pwd
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths, own_key_file
from nbterm.services.cloud import ec2 as ec2_module
from nbterm.services.cloud import guard, lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host import up as host_up
from nbterm.services.remote import jupyter
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.install import VENV
from nbterm.services.remote.ssh import close_quietly, connect, run
from nbterm.ui.messages import HostStatus
from tests.e2e.test_guard_stops_the_instance import moto_power_off
from tests.e2e.test_spot_recovery import INTERRUPTED, SpotReasons
from tests.harness.cockpit import RecordingScreen, trust_the_test_sshd
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import ec2_config_text, end_guard
from tests.harness.sshd import REMOTE_VENV, SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

WHEELS = REMOTE_VENV.parent / "wheels"


def the_machine_is_off(sshd: SshServer) -> None:
    """The "instance" is this machine: what a stopped instance runs is gone, so its guard goes
    too (its sshd already went). The next `up` starts the guard again."""
    state = Path(pwd.getpwnam(sshd.user).pw_dir) / guard.GUARD_DIR / "state.json"
    with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
        os.kill(int(json.loads(state.read_text())["pid"]), signal.SIGTERM)


async def test_zero_to_notebook_and_the_nets_that_need_no_laptop(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from nbterm.ui.controller import Controller

    if not (WHEELS / ".complete").exists():
        pytest.fail(f"{WHEELS} is missing: run tests/setup.sh as root")
    monkeypatch.setattr(host_up, "Ec2", SpotReasons)
    monkeypatch.setattr(ec2_module, "Ec2", SpotReasons)
    text = ec2_config_text(
        moto_ec2.endpoint_url, sshd, local_port=31657, own_key=True, command="jupyter lab",
        jupyter='install_python = "/usr/bin/python3"\n'
        f'install_pip_args = ["--no-index", "--find-links", "{WHEELS}"]\n',
        host='jupyter = { tmux_session = "nbterm-story", remote_port = 18990 }\n',
        template="spot = true\nidle_stop_minutes = 30\n",
    )  # fmt: skip
    config = load_config(write_config(text))
    host = config.hosts["gpu"]
    ec2 = Ec2(config.aws)
    launched = await asyncio.to_thread(
        lifecycle.launch, ec2, host, config.templates["gpu"], note=lambda m: None, delay=0.1,
        wait_ssh=False,
    )  # fmt: skip
    raw = ec2.client.describe_instances(InstanceIds=[launched.id])["Reservations"][0]
    assert raw["Instances"][0]["KeyName"].startswith("nbterm-")  # (1) no key pair by hand

    configured = host_up.guard_settings
    power_off = moto_power_off(moto_ec2.endpoint_url, launched.id)

    def quick_guard(h: Any, template: Any) -> Any:  # the template's minutes, as seconds
        settings = configured(h, template)
        assert settings is not None and settings.idle_minutes == 30
        return dataclasses.replace(
            settings, idle_minutes=0.05, grace_minutes=0.02, lease_minutes=0.03,
            check_seconds=0.3, power_off=power_off,
        )  # fmt: skip

    monkeypatch.setattr(host_up, "guard_settings", quick_guard)
    authorized = sshd.workdir / "authorized_keys"
    before = authorized.read_text()
    authorized.write_text(before + own_key_file().with_name("nbterm_ed25519.pub").read_text())
    screen = RecordingScreen()
    said, story = screen.said, screen.story
    questions: list[str] = []

    async def yes(question: str) -> bool:
        questions.append(question)
        return True

    def ups() -> int:
        return sum(1 for m in said if isinstance(m, HostStatus) and m.status == "up")

    async def until(done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"{what}: {story()[-6:]}"
            await asyncio.sleep(0.1)

    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd, yes)  # type: ignore[arg-type]
    controller.capacity_every = 0.5
    up = asyncio.create_task(controller.up("gpu"))
    try:
        await until(lambda: ups() == 1, 180, "(2) up, Jupyter installed on the way")
        assert len(questions) == 1 and "no Jupyter" in questions[0]
        first = controller.running["gpu"]

        INTERRUPTED.add(launched.id)  # (3) AWS takes the capacity back
        ec2.stop(launched.id)
        sshd.stop()
        the_machine_is_off(sshd)
        await until(lambda: any(getattr(m, "status", "") == "waiting" for m in said), 60,
                    "waiting for capacity")  # fmt: skip
        sshd.start()
        ec2.start(launched.id)
        await until(lambda: ups() == 2, 90, "up again by itself")
        again = controller.running["gpu"]
        assert (again.local_port, again.url) == (first.local_port, first.url)
        assert len(questions) == 1  # Jupyter was remembered: nothing asked the second time

        up.cancel()  # (4) the person quits: the cockpit closes every host
        await asyncio.gather(up, return_exceptions=True)
        await controller.close_all()
        left = time.monotonic()
        while (now := await asyncio.to_thread(ec2.get, launched.id)) is not None and (
            now.state != "stopped"
        ):
            assert time.monotonic() - left < 40, f"still {now.state} after the laptop left"
            await asyncio.sleep(0.3)
    finally:
        INTERRUPTED.discard(launched.id)
        if sshd.proc is None or sshd.proc.poll() is not None:
            sshd.start()
        up.cancel()
        await asyncio.gather(up, return_exceptions=True)
        await controller.close_all()
        known = KnownHosts(paths.known_hosts)
        link = await connect(lifecycle.reach_for(config, host, launched).target, known)
        try:
            await end_guard(link)
            await jupyter.stop(link, host.jupyter)
            await run(link, f"rm -rf {VENV} .nbterm/runtime/nbterm-story; true")
        finally:
            close_quietly(link)
        authorized.write_text(before)
        await asyncio.to_thread(
            lifecycle.terminate, ec2, host, paths, note=lambda m: None, delay=0.1
        )
