"""An EC2 host's life around the remote session: find, start, wait, address; stop; terminate.

Blocking (boto3 and socket waits): callers run these in threads. Each step reports a short note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud.ec2 import Ec2, Ec2Error, wait_for_ssh
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import SshTarget, target_for
from nbterm.services.sync import addresses
from nbterm.services.sync.ssh_config import Ec2Address, write_ssh_config

Note = Callable[[str], None]


@dataclass(frozen=True)
class Ec2Ready:
    """A running instance that answers SSH, and how to reach it."""

    instance: Instance
    address: str
    target: SshTarget

    @property
    def addresses(self) -> dict[str, Ec2Address]:
        return {self.target.name: Ec2Address(self.instance.id, self.address)}


def find_or_fail(ec2: Ec2, host: Host) -> Instance:
    instance = ec2.find(host)
    if instance is None:
        template = f"nbterm launch {host.template}" if host.template else "launch one"
        raise Ec2Error(
            f"{host.name}: no live instance"
            + (f" named {host.instance!r}" if host.instance else "")
            + f" ({template} first)"
        )
    return instance


def bring_up(
    ec2: Ec2,
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    note: Note,
    state_timeout: float = 600,
    ssh_timeout: float = 300,
    delay: float = 2.0,
) -> Ec2Ready:
    """Start the host's instance if it is stopped, wait until it runs and SSH answers, and
    rewrite the generated ssh config with its fresh address."""
    instance = find_or_fail(ec2, host)
    if instance.state == "stopping":
        note(f"{instance.id} is stopping; waiting to start it again")
        instance = ec2.wait_for(instance.id, "stopped", timeout=state_timeout, delay=delay)
    if instance.state == "stopped":
        note(f"starting {instance.id} ({instance.type})")
        instance = ec2.start(instance.id)
    if instance.state != "running":
        note(f"waiting for {instance.id} to run")
        instance = ec2.wait_for(instance.id, "running", timeout=state_timeout, delay=delay)
    address = host.address or instance.address
    if not address:
        raise Ec2Error(
            f'{host.name}: {instance.id} has no public address; set address = "..." for it '
            "(a private address you can reach, a port forward, a VPN)"
        )
    via = host.reached_through
    if via is None:
        note(f"{instance.id} is running at {address}; waiting for SSH")
        wait_for_ssh(address, host.port, timeout=ssh_timeout, delay=delay)
    else:  # its address may be private: only the way in can tell when its SSH answers
        note(f"{instance.id} is running at {address}; its SSH is reached through {via}")
    target = target_for(host, config, address=address, alias=instance.id)
    write_ssh_config(config, paths, {host.name: Ec2Address(instance.id, address)})
    return Ec2Ready(instance, address, target)


def stop(
    ec2: Ec2,
    host: Host,
    *,
    note: Note,
    timeout: float = 600,
    delay: float = 2.0,
    paths: Paths | None = None,
) -> Instance:
    """Stop the instance; with ``paths``, forget its address (a stopped instance loses it)."""
    instance = find_or_fail(ec2, host)
    if paths is not None:
        addresses.update(paths, {host.name: None})
    if instance.state in ("stopped", "stopping"):
        note(f"{instance.id} is already {instance.state}")
        return instance
    note(f"stopping {instance.id}")
    ec2.stop(instance.id)
    return ec2.wait_for(instance.id, "stopped", timeout=timeout, delay=delay)


def terminate(
    ec2: Ec2, host: Host, paths: Paths, *, note: Note, timeout: float = 600, delay: float = 2.0
) -> Instance:
    """Terminate, then forget the instance's host key (its id will never come back)."""
    instance = find_or_fail(ec2, host)
    note(f"terminating {instance.id}")
    ec2.terminate(instance.id)
    addresses.update(paths, {host.name: None})
    done = ec2.wait_for(instance.id, "terminated", timeout=timeout, delay=delay)
    if KnownHosts(paths.known_hosts).forget(instance.id):
        note(f"forgot the host key of {instance.id}")
    return done
