"""``nbterm ssh-config``, ``nbterm ssh NAME``, ``nbterm import-ssh``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

from nbterm.cli.common import EXIT_CONFIG, CliError, load
from nbterm.config import ConfigError, parse_config
from nbterm.config.import_ssh import ImportSshError, import_hosts
from nbterm.files import write_private
from nbterm.locations import resolve_paths
from nbterm.services.cloud.ec2 import Ec2Error
from nbterm.services.host.up import reach_running
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh_config import render_ssh_config, write_ssh_config


def cmd_ssh_config(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    sys.stdout.write(render_ssh_config(config, paths))
    return 0


def cmd_ssh(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = config.hosts.get(args.name)
    if host is None:
        known = ", ".join(config.hosts) or "none"
        raise CliError(f"no host named {args.name!r} in {config.path} (hosts: {known})")
    ssh = shutil.which("ssh")
    if ssh is None:
        raise CliError("the OpenSSH client (ssh) is not installed")
    try:  # an EC2 address is looked up now, never remembered from last time
        where = asyncio.run(reach_running(config, host))
    except Ec2Error as exc:
        raise CliError(str(exc)) from None
    if where is None:
        raise CliError(f"{host.name} is not running: `nbterm up {host.name}` starts it")
    if not KnownHosts(paths.known_hosts).knows(where.target.alias):
        print(
            f"nbterm does not know {host.name}'s host key yet: `nbterm up {host.name}` checks "
            "and stores it first (ssh will refuse an unknown key)",
            file=sys.stderr,
        )
    generated = write_ssh_config(config, paths, where.addresses)
    command = list(args.remote_command)
    if command[:1] == ["--"]:
        command = command[1:]
    # Interactive: allow passphrase prompts. Host keys are still checked strictly.
    argv = [ssh, "-F", str(generated), "-o", "BatchMode=no", host.name, *command]
    os.execv(ssh, argv)  # noqa: S606 - replacing this process with ssh is the point
    return 0  # pragma: no cover - execv does not return


def cmd_import_ssh(args: argparse.Namespace) -> int:
    source = Path(os.path.expanduser(args.ssh_config))
    if not source.is_file():
        raise CliError(f"no ssh config at {source}")
    try:
        result = import_hosts(source, args.hosts)
    except ImportSshError as exc:
        raise CliError(str(exc)) from None
    text = result.to_toml(source)
    if args.output:
        target = Path(args.output).expanduser()
        if target.exists():
            raise CliError(f"{target} already exists; nothing written", EXIT_CONFIG)
        write_private(target, text, own_folder=False)
        print(f"wrote {len(result.hosts)} host(s) to {target}")
        return 0
    if args.append:
        return _append(resolve_paths(args.config).config_file, text, len(result.hosts))
    sys.stdout.write(text)
    return 0


def _append(target: Path, text: str, count: int) -> int:
    current = target.read_text() if target.exists() else ""
    combined = current + ("\n" if current and not current.endswith("\n") else "") + "\n" + text
    try:
        parse_config(combined, target, check_files=False)
    except ConfigError as exc:
        raise CliError(
            f"not appended: the result would not be a valid config\n{exc}", EXIT_CONFIG
        ) from None
    write_private(target, combined, own_folder=False)
    print(f"appended {count} host(s) to {target}")
    return 0
