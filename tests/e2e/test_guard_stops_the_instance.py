"""The guard on the instance stops a forgotten instance with no laptop attached.

An instance launched in moto (shutdown behaviour "stop"), reached at the loopback sshd; `up`
arms the guard from the template's settings (minutes shortened to seconds here), the session
goes down (the laptop quits), and with Jupyter idle and the lease run out the guard powers the
instance off. The power-off is injected: instead of `sudo shutdown` on this test machine, the
guard's command asks moto's EC2 to stop that instance, which is what a power-off from inside an
instance with shutdown behaviour "stop" does. moto then says stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import guard, lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.host.up import guard_settings
from nbterm.services.remote.events import GuardReport, Notice, RemoteEvent
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import close_quietly, connect, run
from nbterm.services.sync.events import SyncEvent
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import ec2_config_text, end_guard, trust_all
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]


def moto_power_off(endpoint: str, instance_id: str) -> str:
    """What `shutdown -h now` does to an instance whose shutdown behaviour is "stop"."""
    body = f"Action=StopInstances&Version=2016-11-15&InstanceId.1={instance_id}"
    # moto's server tells the service and region from the signature's scope
    scope = "Credential=testing/20261127/us-east-1/ec2/aws4_request"
    auth = f"AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0"
    code = (
        "import urllib.request as u; "
        f"r = u.Request({endpoint + '/'!r}, data={body.encode()!r}, "
        f"headers={{'Authorization': {auth!r}}}); u.urlopen(r, timeout=10).read()"
    )
    return f"python3 -c {shlex.quote(code)}"


async def test_the_guard_stops_an_idle_instance_after_the_laptop_left(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=31257,
                           host='instance = "nb-guarded"\n',
                           template="idle_stop_minutes = 30\n")  # fmt: skip
    config = load_config(write_config(text))
    host = config.hosts["gpu"]
    ec2 = Ec2(config.aws)
    launched = await asyncio.to_thread(
        lifecycle.launch, ec2, host, config.templates["gpu"], note=lambda m: None, delay=0.1
    )
    configured = guard_settings(host, config.templates["gpu"])
    assert configured is not None and configured.idle_minutes == 30  # from the template
    settings = dataclasses.replace(
        configured, idle_minutes=0.05, grace_minutes=0.02, lease_minutes=0.03, check_seconds=0.3,
        power_off=moto_power_off(moto_ec2.endpoint_url, launched.id),
    )  # fmt: skip
    events: list[RemoteEvent | SyncEvent] = []
    ready = await asyncio.to_thread(
        lifecycle.bring_up, ec2, config, paths, host, note=lambda m: None, delay=0.1
    )
    session = HostSession(config, "gpu", paths, verifier=trust_all, on_event=events.append,
                          reach=ready, cloud=Cloud(guard=settings),
                          timings=Timings(lease_every=0.3))  # fmt: skip
    link = None
    try:
        await session.up()
        said = [e.message for e in events if isinstance(e, Notice)]
        assert any("idle guard armed" in message for message in said), said
        deadline = time.monotonic() + 10
        while not any(isinstance(e, GuardReport) for e in events):
            assert time.monotonic() < deadline, "no guard report while attached"
            await asyncio.sleep(0.1)
        assert ec2.get(launched.id).state == "running"  # type: ignore[union-attr]
        await session.down(final_sync=False)  # the laptop leaves; Jupyter keeps running
        left = time.monotonic()
        while (now := await asyncio.to_thread(ec2.get, launched.id)) is not None and (
            now.state != "stopped"
        ):
            if time.monotonic() - left > 40:
                look = await connect(ready.target, KnownHosts(paths.known_hosts))
                try:
                    _s, out, err = await run(look, f"cd {guard.GUARD_DIR}; date; cat "
                                                     "guard.log state.json")  # fmt: skip
                    log = out + err
                finally:
                    close_quietly(look)
                raise AssertionError(f"still {now.state} 40 s after the laptop left: {log}")
            await asyncio.sleep(0.3)
        assert time.monotonic() - left >= 0.03 * 60 - 0.5  # not before the lease ran out
    finally:
        await session.down(final_sync=False)
        known = KnownHosts(paths.known_hosts)
        link = await connect(ready.target, known)
        try:
            await end_guard(link)
        finally:
            close_quietly(link)
        await asyncio.to_thread(
            lifecycle.terminate, ec2, host, paths, note=lambda m: None, delay=0.1
        )
