"""``nbterm config init | check | path``."""

from __future__ import annotations

import argparse
import asyncio
import os

from nbterm.cli.common import EXIT_CONFIG, CliError, load
from nbterm.config import LoadedConfig
from nbterm.config.starter import ConfigExistsError, write_starter
from nbterm.locations import resolve_paths


def cmd_path(args: argparse.Namespace) -> int:
    print(resolve_paths(args.config).config_file)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = resolve_paths(args.config).config_file
    try:
        backup = write_starter(target, force=args.force)
    except ConfigExistsError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    if backup is not None:
        print(f"kept the old config as {backup}")
    print(f"wrote {target}")
    print("edit it, then run `nbterm config check`")
    return 0


def _notifications(config: LoadedConfig) -> str:
    """Which path a desktop notification takes from here (in the cockpit's own environment)."""
    from nbterm.services import desktop

    settings = config.notify
    bell = "the bell" if settings.bell else "no bell"
    if not settings.desktop:
        return f"{bell}, no desktop notification ([notify] desktop = false)"
    return f"{bell}, and {desktop.choose(settings.desktop_via).why}"


def cmd_check(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    ec2 = [host for host in config.hosts.values() if host.is_ec2]
    print(f"{config.path}: OK")
    print(
        f"  {len(config.hosts)} host(s) ({len(ec2)} EC2, {len(config.hosts) - len(ec2)} SSH), "
        f"{len(config.templates)} template(s), {len(config.sync)} sync rule(s)"
    )
    for host in config.hosts.values():
        where = f"EC2 {host.instance or 'from template ' + str(host.template)}"
        if not host.is_ec2:
            where = f"{host.user + '@' if host.user else ''}{host.hostname}:{host.port}"
        print(f"  {host.name:<16} {where:<40} -> http://127.0.0.1:{host.jupyter.local_port}/")
    for rule in config.sync:
        local = os.path.expanduser(rule.local)
        print(f"  sync {rule.host}:{rule.remote} -> {local} every {rule.interval}s")
    print(f"  notifications: {_notifications(config)}")
    if not args.online:
        return 0
    from nbterm.safe_text import shown
    from nbterm.services.doctor import online_findings

    print("online:")
    findings = asyncio.run(online_findings(config, paths))
    for finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        print(f"  {mark} {finding.subject:<16} {shown(finding.detail)}", flush=True)
    return 0 if all(finding.ok for finding in findings) else 1
