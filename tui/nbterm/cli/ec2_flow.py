"""The EC2 steps the host commands share: reach a running instance, final-sync a host."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from nbterm.cli.common import CliError
from nbterm.cli.hosts import verifier_for
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import Printer
from nbterm.safe_text import shown
from nbterm.services.cloud.console_keys import console_verifier
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.lifecycle import bring_up
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.ssh import SshError, SshTarget, close_quietly, connect, target_for
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS, SyncEngine
from nbterm.services.sync.ssh_config import Ec2Address, end_master, write_ssh_config


def say(host: Host, message: str) -> None:
    print(f"{host.name}: {shown(message)}", flush=True)


@dataclass(frozen=True)
class Reach:
    """How to reach a host now: its SSH target, the EC2 addresses for the ssh config, the
    verifier for a new host key."""

    target: SshTarget
    ec2: dict[str, Ec2Address]
    verifier: Verifier | None
    instance: Instance | None = None


async def reach(
    config: LoadedConfig, paths: Paths, host: Host, args: argparse.Namespace, *, start: bool
) -> Reach | None:
    """For EC2, start the instance when ``start`` (else None if it is not running)."""
    verifier = verifier_for(args)
    if not host.is_ec2:
        return Reach(target_for(host, config), {}, verifier)
    ec2 = Ec2(config.aws)
    try:
        if start:
            ready = await asyncio.to_thread(
                bring_up, ec2, config, paths, host, note=lambda m: say(host, m)
            )
            instance, address = ready.instance, ready.address
        else:
            found = await asyncio.to_thread(ec2.find, host)
            if found is None or found.state != "running":
                return None
            instance, address = found, host.address or found.address
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    if not getattr(args, "accept_host_key", None):  # an explicit fingerprint is the user's word
        verifier = console_verifier(
            ec2, instance.id, fallback=verifier, wait=config.aws.console_key_wait
        )
    target = target_for(host, config, address=address, alias=instance.id)
    return Reach(target, {host.name: Ec2Address(instance.id, address)}, verifier, instance)


async def ensure_trusted(where: Reach, paths: Paths) -> KnownHosts:
    """rsync's OpenSSH checks host keys strictly and never asks: check and store a new key first."""
    known = KnownHosts(paths.known_hosts)
    if not known.knows(where.target.alias):
        try:
            close_quietly(await connect(where.target, known, where.verifier))
        except SshError as exc:
            raise CliError(str(exc)) from None
    return known


async def final_sync(
    config: LoadedConfig, paths: Paths, host: Host, args: argparse.Namespace
) -> bool:
    """A bounded final sync of the host's rules, if it is reachable; True if nothing was lost."""
    rules = config.sync_rules_for(host.name)
    if not rules:
        return True
    where = await reach(config, paths, host, args, start=False)
    if where is None:
        say(host, "not running: nothing to sync")
        return True
    await ensure_trusted(where, paths)
    ssh_config = write_ssh_config(config, paths, where.ec2)
    printer = Printer(quiet_cycles=False)
    try:
        results = [
            await SyncEngine(rule, paths, ssh_config, printer, retries=False).final_sync(
                FINAL_SYNC_SECONDS
            )
            for rule in rules
        ]
    finally:
        await end_master(ssh_config, host.name)
    return all(result.ok for result in results)
