"""``nbterm launch``, ``nbterm stop``, ``nbterm terminate``: the EC2 instances themselves."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys

from nbterm.cli.common import CliError, load
from nbterm.cli.ec2_flow import say
from nbterm.cli.hosts import ec2_host, verifier_for
from nbterm.cli.sync_cmds import sync_then
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.host import sentinel
from nbterm.services.host.up import arm_guard


def _host_for_template(config: LoadedConfig, template: str, name: str | None) -> Host:
    if template not in config.templates:
        known = ", ".join(config.templates) or "none"
        raise CliError(f"no template named {template!r} (templates: {known})")
    if name:
        return ec2_host(config, name)
    users = [h for h in config.hosts.values() if h.template == template]
    if len(users) != 1:
        which = ", ".join(h.name for h in users) or "none"
        raise CliError(
            f"say which host the instance is for with --host (hosts using {template!r}: {which})"
        )
    return users[0]


def cmd_launch(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = _host_for_template(config, args.template, args.host)
    note = functools.partial(say, host)
    watch = sentinel.post(paths, host.name, "terminate")  # killed halfway: nothing is left
    try:
        instance = lifecycle.launch(
            Ec2(config.aws), host, config.templates[args.template], name=args.name,
            wait_ssh=not args.no_wait_ssh, note=note, on_launched=watch.watch,
        )  # fmt: skip
    except lifecycle.LaunchLeftOver as exc:
        watch.release()  # it keeps trying in the background
        raise CliError(f"{exc} (nbterm keeps trying for {sentinel.PATIENCE / 60:.0f} min in "
                       "the background)") from None  # fmt: skip
    except Ec2Error as exc:
        watch.disarm()
        raise CliError(str(exc)) from None
    except BaseException:
        watch.release()  # ^C halfway: the sentinel terminates what was launched
        raise
    if args.no_wait_ssh:
        watch.disarm()
        note(f"{instance.id} runs with NO idle guard until `nbterm up {host.name}` arms it "
             f"(`nbterm stop {host.name}` stops it)")  # fmt: skip
        return 0
    try:
        ask = verifier_for(args.accept_host_key)
        console = args.accept_host_key is None  # an explicit fingerprint is the user's word
        words = asyncio.run(arm_guard(config, paths, host, ask, console_keys=console))
    finally:
        watch.disarm()  # guarded, or said not to be: the person decides from here
    note(f"{instance.id} runs{words}")
    note(f"next: `nbterm up {host.name}`")
    return 0


def _guarded_sync(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    what: str,
    *,
    force: bool,
    accept_host_key: str | None,
) -> None:
    ok = sync_then(config, paths, host, accept_host_key=accept_host_key).ok
    if not ok and not force:
        raise CliError(
            f"{host.name}: not going to {what} the instance, since the final sync did not "
            f"complete (--force to {what} it anyway)"
        )


def cmd_stop(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = ec2_host(config, args.name)
    _guarded_sync(config, paths, host, "stop", force=args.force,
                  accept_host_key=args.accept_host_key)  # fmt: skip
    try:
        instance = lifecycle.stop(Ec2(config.aws), host, note=lambda m: say(host, m), paths=paths)
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    say(host, f"{instance.id} is {instance.state}")
    return 0


def cmd_terminate(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = ec2_host(config, args.name)
    ec2 = Ec2(config.aws)
    try:
        instance = lifecycle.find_or_fail(ec2, host)
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("terminate asks you to type the host name; from a script, pass --yes")
        print(
            f"This terminates {instance.id} ({instance.type}, {instance.state}) and deletes its "
            "disk. A final sync runs first."
        )
        typed = input(f"Type {host.name!r} to terminate it: ").strip()
        if typed != host.name:
            raise CliError("not terminated: the name did not match")
    _guarded_sync(config, paths, host, "terminate", force=args.force,
                  accept_host_key=args.accept_host_key)  # fmt: skip
    try:
        done = lifecycle.terminate(ec2, host, paths, note=lambda m: say(host, m))
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    say(host, f"{done.id} is {done.state}")
    return 0
