"""The steps the host commands share: reach a running host, trust its key, final-sync it."""

from __future__ import annotations

from dataclasses import dataclass

from nbterm.cli.common import CliError
from nbterm.cli.hosts import verifier_for
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import Printer
from nbterm.safe_text import shown
from nbterm.services.cloud.ec2 import Ec2Error
from nbterm.services.cloud.lifecycle import Reach
from nbterm.services.host_up import key_check, reach_running
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.ssh import SshError, close_quietly, connect
from nbterm.services.remote.ssh_config import end_master, write_ssh_config
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS, SyncEngine


def say(host: Host, message: str) -> None:
    print(f"{host.name}: {shown(message)}", flush=True)


@dataclass(frozen=True)
class Reached:
    """A running host, and how a new host key of it is checked."""

    reach: Reach
    verifier: Verifier | None


async def reach(config: LoadedConfig, host: Host, *, accept_host_key: str | None) -> Reached | None:
    """Where a host is now, starting nothing (None: its instance is not running).

    ``accept_host_key``: the fingerprint the user gave for a new key; without it, an EC2
    instance's key is checked against its console, then asked about on a terminal."""
    try:
        where = await reach_running(config, host)
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    if where is None:
        return None
    ask = verifier_for(accept_host_key)
    return Reached(where, key_check(config, where, ask, console_keys=accept_host_key is None))


async def ensure_trusted(where: Reached, paths: Paths) -> KnownHosts:
    """rsync's OpenSSH checks host keys strictly and never asks: check and store a new key first."""
    known = KnownHosts(paths.known_hosts)
    target = where.reach.target
    if not known.knows(target.alias):
        try:
            close_quietly(await connect(target, known, where.verifier))
        except SshError as exc:
            raise CliError(str(exc)) from None
    return known


async def final_sync(
    config: LoadedConfig, paths: Paths, host: Host, *, accept_host_key: str | None
) -> bool:
    """A bounded final sync of the host's rules, if it is reachable; True if nothing was lost."""
    rules = config.sync_rules_for(host.name)
    if not rules:
        return True
    where = await reach(config, host, accept_host_key=accept_host_key)
    if where is None:
        say(host, "not running: nothing to sync")
        return True
    await ensure_trusted(where, paths)
    ssh_config = write_ssh_config(config, paths, where.reach.addresses)
    printer = Printer()
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
