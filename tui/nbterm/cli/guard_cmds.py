"""``nbterm guard status|off|on HOST``: the idle guard on an EC2 instance."""

from __future__ import annotations

import argparse
import asyncio

from nbterm.cli.common import CliError, load
from nbterm.cli.ec2_flow import reach, say
from nbterm.cli.hosts import ec2_host
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import guard_words
from nbterm.services.cloud import guard
from nbterm.services.host.up import guard_settings
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import SshError, close_quietly, connect


def cmd_guard(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = ec2_host(config, args.name)
    return asyncio.run(
        _guard(config, paths, host, args.action, accept_host_key=args.accept_host_key)
    )


async def _guard(
    config: LoadedConfig, paths: Paths, host: Host, action: str, *, accept_host_key: str | None
) -> int:
    settings = guard_settings(host, config.templates.get(host.template or ""))
    if action == "on" and settings is None:
        raise CliError(
            f"{host.name}: its template sets no idle_stop_minutes (or guard = false): "
            "there is nothing for a guard to go by"
        )
    where = await reach(config, host, accept_host_key=accept_host_key)
    if where is None:
        raise CliError(f"{host.name} is not running: its guard can only be reached while it is")
    try:
        link = await connect(where.reach.target, KnownHosts(paths.known_hosts), where.verifier)
    except SshError as exc:
        raise CliError(str(exc)) from None
    try:
        if action == "off":
            if await guard.turn_off(link):
                say(host, "idle guard OFF: it stays off until `nbterm guard on " + host.name + "`")
            else:
                say(host, "no idle guard was ever installed on this instance")
            return 0
        if action == "on":
            assert settings is not None
            await guard.allow(link)
            say(host, await guard.install(link, settings))
            return 0
        state = await guard.read_state(link)
    except (guard.GuardError, OSError) as exc:
        raise CliError(f"{host.name}: {exc}") from None
    finally:
        close_quietly(link)
    if state is None:
        say(host, "no idle guard on this instance (`nbterm up` installs it when the template "
                  "sets idle_stop_minutes)")  # fmt: skip
        return 0
    say(host, "idle guard " + guard_words(state.report(host.name)))
    return 0
