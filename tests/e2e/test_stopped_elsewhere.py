"""A stop decided elsewhere (another laptop, the guard, the console, AWS) reaches every attached
nbterm as who stopped it, with one last sync first, over moto's EC2 and the loopback sshd.

Before: laptop A, attached, learnt nothing from EC2 (its connection to the loopback "instance"
stayed up); on a real instance it would only have seen the connection drop, and its last words
were "tunnel closed; Jupyter keeps running on the remote". Invariant, asserted from EC2's side:
the instance is stopped and carries the stopper's name; A's session ends saying who stopped it,
a save made before the stop is home (its last sync), and no word says Jupyter keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import STOPPED_BY_TAG, Ec2
from nbterm.services.cloud.instance import Instance
from nbterm.services.host.down import STOP_TAG_WORDS
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.host.up import gone_words, outside_check
from nbterm.services.remote.events import RemoteEvent, TunnelHealth
from nbterm.services.sync.events import CycleDone, SyncEvent
from tests.harness.guard import another_laptop
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.procs import free_port
from tests.harness.remote import ec2_config_text, remote_shell, sync_rule, trust_all
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def folder(sshd: SshServer) -> Iterator[str]:
    name = f"nbterm-elsewhere-{uuid.uuid4().hex[:8]}"
    remote_shell(sshd, f"mkdir -p {name}")
    yield name
    remote_shell(sshd, f"rm -rf {name}")


@pytest.fixture
def config(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], tmp_path: Path,
    folder: str,
) -> LoadedConfig:  # fmt: skip
    text = ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=free_port())
    text += sync_rule(folder, tmp_path / "local nb", host="gpu", extra="interval = 600\n")
    return load_config(write_config(text))


async def test_a_stop_by_another_laptop_reaches_the_attached_one_with_a_last_sync(
    config: LoadedConfig, paths: Paths, sshd: SshServer, tmp_path: Path, folder: str
) -> None:
    ec2 = Ec2(config.aws)
    host = config.hosts["gpu"]
    launched = ec2.launch(host, config.templates["gpu"])
    instance = ec2.wait_for(launched.id, "running", delay=0.1)
    paths_a, paths_b = (
        another_laptop(paths, tmp_path, "alice"),
        another_laptop(paths, tmp_path, "bob"),
    )
    events: list[RemoteEvent | SyncEvent] = []
    session = HostSession(
        config, "gpu", paths_a, verifier=trust_all, on_event=events.append,
        reach=lifecycle.reach_for(config, host, instance),
        cloud=Cloud(outside_check=outside_check(ec2, instance.id)),
        timings=Timings(outside_every=0.3),
    )  # fmt: skip
    try:
        await session.up()
        await asyncio.sleep(1.0)
        # saved just before the stop
        remote_shell(sshd, f"cat > {folder}/late.ipynb", NOTEBOOK.encode())
        # bob, on another laptop, stops it for his budget (the watcher may not have seen it)
        await asyncio.to_thread(lifecycle.stop, ec2, host, note=lambda m: None, delay=0.1,
                                paths=paths_b, why=STOP_TAG_WORDS["budget"])  # fmt: skip
        await asyncio.wait_for(session.ended.wait(), 20)
    finally:
        await session.down(final_sync=False)
    raw = ec2.client.describe_instances(InstanceIds=[instance.id])["Reservations"][0]
    state = raw["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in state.get("Tags", [])}
    assert state["State"]["Name"] == "stopped"
    assert tags[STOPPED_BY_TAG].startswith("bob|the daily budget|")
    assert session.stopped_elsewhere
    assert session.reason == f"{instance.id} is stopped: stopped by bob (the daily budget)"
    assert (tmp_path / "local nb" / "late.ipynb").read_text() == NOTEBOOK
    assert any(isinstance(e, CycleDone) and e.trigger == "final" for e in events)
    words = [e.message for e in events if isinstance(e, TunnelHealth) and e.message]
    assert not any("keeps running" in w for w in words), words
    assert any("Jupyter went with it" in w for w in words), words


def _instance(**changes: object) -> Instance:
    base = Instance(id="i-1", name="", host="gpu", state="stopped", type="g5.xlarge", spot=False,
                    az="", launch_time=dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC),
                    public_dns="", public_ip="", private_ip="")  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_who_stopped_it_is_said_only_from_a_record_of_this_stop() -> None:
    after = dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC).timestamp()
    before = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC).timestamp()
    assert gone_words(_instance(stopped_by=f"bob|max_hours|{after:.0f}"), "i-1") == (
        "i-1 is stopped: stopped by bob (max_hours)"
    )
    stale = gone_words(_instance(stopped_by=f"bob|max_hours|{before:.0f}",
                                 state_reason="Client.UserInitiatedShutdown: User initiated "
                                 "shutdown"), "i-1")  # fmt: skip
    assert stale is not None and "bob" not in stale and "not by nbterm" in stale
    inside = gone_words(_instance(state_reason="Client.InstanceInitiatedShutdown: Instance "
                                  "initiated shutdown"), "i-1")  # fmt: skip
    assert inside is not None and "powered off from inside" in inside
    assert gone_words(_instance(state="running"), "i-1") is None
