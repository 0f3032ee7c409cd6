"""``nbterm guard status|off|on|extend HOST``: the idle guard on an EC2 instance."""

from __future__ import annotations

import argparse
import asyncio
import time

from nbterm.cli.common import CliError, age_seconds, load
from nbterm.cli.ec2_flow import reach, say
from nbterm.cli.hosts import ec2_host
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import decision_lines, guard_words, signal_lines
from nbterm.services.cloud import guard
from nbterm.services.host.up import guard_settings
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import SshError, close_quietly, connect


def duration_seconds(text: str | None) -> float:
    """``3h``, ``90m``, ``1d``, ``1.5h``: seconds, at most guard.EXTEND_LIMIT_HOURS."""
    seconds = age_seconds(text, "guard extend needs a duration")
    if not 0 < seconds <= guard.EXTEND_LIMIT_HOURS * 3600:
        raise CliError(f"guard extend: at most {guard.EXTEND_LIMIT_HOURS / 24:g} days")
    return seconds


def cmd_guard(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = ec2_host(config, args.name)
    extend_for = duration_seconds(args.duration) if args.action == "extend" else None
    if args.action != "extend" and args.duration is not None:
        raise CliError(f"guard {args.action} takes no duration (only extend does)")
    return asyncio.run(
        _guard(config, paths, host, args.action, accept_host_key=args.accept_host_key,
               extend_for=extend_for)
    )  # fmt: skip


async def _guard(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    action: str,
    *,
    accept_host_key: str | None,
    extend_for: float | None = None,
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
        if action == "extend":
            assert extend_for is not None
            until = time.time() + extend_for
            if not await guard.extend(link, until):
                say(host, "no idle guard on this instance: nothing stops it when idle")
                return 0
            when = time.strftime("%a %H:%M", time.localtime(until))
            say(host, f"no idle stop before {when}, by the guard or an attached nbterm; "
                      "max_hours and the daily budget still apply")  # fmt: skip
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
    if state.signals:
        when = time.strftime("%H:%M:%S", time.localtime(state.checked or time.time()))
        print(f"  what it saw at its last check ({when}):")
        for line in signal_lines(state.signals):
            print(f"    {line}")
    if state.decisions:
        print("  its last decisions:")
        for line in decision_lines(state.decisions[-6:]):
            print(f"    {line}")
    if state.last_stop():
        say(host, f"it last powered the instance off {state.last_stop()}")
    return 0
