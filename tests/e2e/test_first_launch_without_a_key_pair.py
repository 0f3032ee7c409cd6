"""From a fresh account with only a template (an AMI and a type): no key pair made by hand.

nbterm makes its own ed25519 key in its state folder (0600), imports it to moto's EC2 named
after its fingerprint, launches with it, and `up` logs in with it (the loopback sshd plays the
instance, whose cloud-init would install the key pair's public key: the test appends it to the
sshd's authorized keys, then restores them).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths, own_key_file
from nbterm.services.cloud import keypair, lifecycle
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.host.up import Face, open_host
from nbterm.services.remote.events import JupyterReady, RemoteEvent
from nbterm.services.sync.events import SyncEvent
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import ec2_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]


def config_text(moto_ec2: MotoEc2, sshd: SshServer) -> str:
    # no key_name in the template, and no identity_file for the host
    return ec2_config_text(moto_ec2.endpoint_url, sshd, local_port=31357, own_key=True)


async def test_launch_and_up_with_nbterms_own_key(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    config = load_config(write_config(config_text(moto_ec2, sshd)))
    host = config.hosts["gpu"]
    assert host.own_key and host.identity_file == own_key_file()
    ec2 = Ec2(config.aws)
    notes: list[str] = []
    launched = await asyncio.to_thread(
        lifecycle.launch, ec2, host, config.templates["gpu"], note=notes.append, delay=0.1,
        wait_ssh=False,
    )  # fmt: skip
    key = own_key_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    name = keypair.key_name(key)
    assert name.startswith("nbterm-") and len(name) == 39
    pairs = ec2.client.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    assert [p["KeyName"] for p in pairs] == [name]
    raw = ec2.client.describe_instances(InstanceIds=[launched.id])["Reservations"][0]
    assert raw["Instances"][0]["KeyName"] == name
    assert any(name in note for note in notes)
    # a second launch (another host, the same laptop) imports nothing new: the same name
    assert keypair.ensure_imported(ec2, key) == name
    assert len(ec2.client.describe_key_pairs()["KeyPairs"]) == 1

    authorized = sshd.workdir / "authorized_keys"
    before = authorized.read_text()
    events: list[RemoteEvent | SyncEvent] = []
    try:
        authorized.write_text(before + key.with_name(key.name + ".pub").read_text())
        opened = await open_host(
            config, paths, "gpu", Face(ask=trust_all, on_event=events.append, note=notes.append,
            console_keys=False),
        )  # fmt: skip
        try:
            assert any(isinstance(e, JupyterReady) for e in events)
        finally:
            await opened.session.down(final_sync=False)
    finally:
        authorized.write_text(before)
        await asyncio.to_thread(
            lifecycle.terminate, ec2, host, paths, note=lambda m: None, delay=0.1
        )


def test_a_lost_own_key_is_said_before_any_connection(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    config = load_config(write_config(config_text(moto_ec2, sshd)))
    host = config.hosts["gpu"]
    ec2 = Ec2(config.aws)
    lifecycle.launch(ec2, host, config.templates["gpu"], note=lambda m: None, delay=0.1,
                     wait_ssh=False)  # fmt: skip
    try:
        name = keypair.key_name(own_key_file())
        own_key_file().unlink()
        with pytest.raises(Ec2Error, match=rf"lets in only the key pair {name}, .* is missing"):
            lifecycle.bring_up(ec2, config, paths, host, note=lambda m: None, delay=0.1)
    finally:
        lifecycle.terminate(ec2, host, paths, note=lambda m: None, delay=0.1)


def test_a_second_laptop_is_told_which_key_pair_and_starts_nothing(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> None:
    """Before: laptop B, which never had laptop A's key, started the instance and was told to
    "put the key back". Now it is told the key pair EC2 launched it with, and the instance
    stays stopped (EC2's own word)."""
    config = load_config(write_config(config_text(moto_ec2, sshd)))
    host = config.hosts["gpu"]
    ec2 = Ec2(config.aws)
    launched = lifecycle.launch(ec2, host, config.templates["gpu"], note=lambda m: None,
                                delay=0.1, wait_ssh=False)  # fmt: skip
    try:
        lifecycle.stop(ec2, host, note=lambda m: None, delay=0.1, paths=paths)
        laptop_a = keypair.key_name(own_key_file())
        for path in (own_key_file(), own_key_file().with_name(own_key_file().name + ".pub")):
            path.unlink()  # laptop B: a key of its own
        keypair.ensure_key(own_key_file())
        laptop_b = keypair.key_name(own_key_file())
        assert laptop_b != laptop_a
        with pytest.raises(Ec2Error) as raised:
            lifecycle.bring_up(ec2, config, paths, host, note=lambda m: None, delay=0.1)
        assert f"launched with the key pair {laptop_a}" in str(raised.value)
        assert laptop_b in str(raised.value) and "put the key back" not in str(raised.value)
        state = ec2.client.describe_instances(InstanceIds=[launched.id])
        assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
    finally:
        lifecycle.terminate(ec2, host, paths, note=lambda m: None, delay=0.1)
