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
from nbterm.services.host.down import SyncedHome, sync_alone
from nbterm.services.host.up import key_check, reach_running
from nbterm.services.journal import Journal
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.ssh import SshError, close_quietly, connect


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
) -> SyncedHome:
    """A bounded final sync of the host's rules over a connection of its own, if it runs."""
    return await sync_alone(
        config, paths, host, verifier=verifier_for(accept_host_key),
        on_event=Printer(Journal(paths)),
        console_keys=accept_host_key is None,  # an explicit fingerprint is the user's word
    )  # fmt: skip
