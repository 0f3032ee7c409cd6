"""A spot interruption, then capacity back: the cockpit brings the host up again by itself.

An instance launched as spot in moto, up in the cockpit's controller (its tunnel in a process of
its own, as in the cockpit) through the loopback sshd. AWS interrupts it: the instance stops
and its SSH goes with it. The reason AWS gives ("Server.SpotInstanceTermination") is injected,
since moto stops instances as a user would: nothing else here is a stand-in. The controller
says it waits; when the persistent request starts the instance again (moto: started; the sshd
back), the host is up again on the same local port, with the same URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import ec2 as ec2_module
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.instance import Instance
from nbterm.services.host import up as host_up
from nbterm.ui.messages import HostNote, HostStatus
from tests.harness.cockpit import RecordingScreen, trust_the_test_sshd
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import ec2_config_text
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

INTERRUPTED: set[str] = set()


class SpotReasons(Ec2):
    """moto's EC2, and the reason AWS gives for the instances it interrupted."""

    def _reason(self, instance: Instance | None) -> Instance | None:
        if (
            instance is not None
            and instance.id in INTERRUPTED
            and instance.state
            in (
                "stopping",
                "stopped",
            )
        ):
            reason = "Server.SpotInstanceTermination: Spot instance termination"
            return dataclasses.replace(instance, state_reason=reason)
        return instance

    def get(self, instance_id: str) -> Instance | None:
        return self._reason(super().get(instance_id))


async def test_the_cockpit_goes_up_again_when_capacity_is_back(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from nbterm.ui.controller import Controller

    monkeypatch.setattr(host_up, "Ec2", SpotReasons)
    monkeypatch.setattr(ec2_module, "Ec2", SpotReasons)  # the controller imports it late
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=31457,
                           template="spot = true\n")  # fmt: skip
    config = load_config(write_config(text))
    ec2 = Ec2(config.aws)
    launched = ec2.launch(config.hosts["gpu"], config.templates["gpu"])
    screen = RecordingScreen()
    said, statuses = screen.said, screen.statuses

    async def until(status: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while statuses().count(status) < count:
            assert time.monotonic() < deadline, f"no {status!r} #{count}: {screen.story()}"
            await asyncio.sleep(0.1)

    controller = Controller(screen, config, paths)  # type: ignore[arg-type]
    controller.attach(screen, trust_the_test_sshd)  # type: ignore[arg-type]
    controller.capacity_every = 0.5
    up = asyncio.create_task(controller.up("gpu"))
    try:
        await until("up", 1, 60)
        first = controller.running["gpu"]
        INTERRUPTED.add(launched.id)  # AWS takes the capacity back
        ec2.stop(launched.id)
        sshd.stop()  # the machine is off: its SSH is gone with it
        await until("waiting", 1, 60)
        waiting = next(m for m in said if isinstance(m, HostStatus) and m.status == "waiting")
        assert "spot interruption" in waiting.detail
        await asyncio.sleep(1.5)  # still stopped: nothing happens but waiting
        assert statuses()[-1] == "waiting" and statuses().count("up") == 1
        sshd.start()  # capacity is back: the request starts the same instance again
        ec2.start(launched.id)
        await until("up", 2, 90)
        again = controller.running["gpu"]
        assert (again.local_port, again.url) == (first.local_port, first.url)
        notes = [m.text for m in said if isinstance(m, HostNote)]
        assert any("capacity is back" in note for note in notes)
        assert not up.done()
    finally:
        INTERRUPTED.discard(launched.id)
        if sshd.proc is None or sshd.proc.poll() is not None:
            sshd.start()
        up.cancel()
        await asyncio.gather(up, return_exceptions=True)
        await controller.close_all()
        await asyncio.to_thread(
            lifecycle.terminate, ec2, config.hosts["gpu"], paths, note=lambda m: None, delay=0.1
        )
