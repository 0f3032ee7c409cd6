"""``nbterm sync NAME [--watch]`` and ``nbterm down NAME``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import Any

from nbterm.cli.common import CliError, load
from nbterm.cli.hosts import add_accept, plain_host, verifier_for
from nbterm.cli.printer import Printer
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.remote import registry
from nbterm.services.remote.connection import HostConnection
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.ssh import SshError, close_quietly, connect, target_for
from nbterm.services.sync.engine import SyncEngine
from nbterm.services.sync.ssh_config import end_master, write_ssh_config
from nbterm.services.sync.watcher import RemoteWatcher

FINAL_SYNC_SECONDS = 120.0


def register(commands: Any) -> None:
    sync = commands.add_parser("sync", help="pull a host's notebooks now (--watch: keep going)")
    sync.add_argument("name", help="host name from the config")
    sync.add_argument(
        "--watch", action="store_true", help="keep syncing on remote changes and the timer"
    )
    add_accept(sync)
    sync.set_defaults(handler=cmd_sync)

    down = commands.add_parser(
        "down", help="final sync, then close the host's tunnel (Jupyter keeps running)"
    )
    down.add_argument("name", help="host name from the config")
    add_accept(down)
    down.set_defaults(handler=cmd_down)


def _rules_host(config: LoadedConfig, name: str) -> Host:
    host = plain_host(config, name)
    if not config.sync_rules_for(name):
        raise CliError(f"{name} has no [[sync]] rules in the config")
    return host


async def _trust(config: LoadedConfig, paths: Paths, host: Host, verifier: Verifier | None) -> None:
    """rsync's OpenSSH checks host keys strictly: make sure the key is known (asking if new)."""
    known = KnownHosts(paths.known_hosts)
    if known.knows(host.name):
        return
    try:
        link = await connect(target_for(host, config), known, verifier)
    except SshError as exc:
        raise CliError(str(exc)) from None
    close_quietly(link)


def cmd_sync(args: argparse.Namespace) -> int:
    config, paths = load(args)
    host = _rules_host(config, args.name)
    return asyncio.run(_sync(config, paths, host, args))


async def _sync(config: LoadedConfig, paths: Paths, host: Host, args: argparse.Namespace) -> int:
    verifier = verifier_for(args)
    await _trust(config, paths, host, verifier)
    ssh_config = write_ssh_config(config, paths)
    printer = Printer(quiet_cycles=args.watch)
    engines = [
        SyncEngine(rule, paths, ssh_config, printer) for rule in config.sync_rules_for(host.name)
    ]
    try:
        if not args.watch:
            cycles = [await engine.cycle("now") for engine in engines]
            return 0 if all(cycle.ok for cycle in cycles) else 1
        return await _watch(config, paths, host, engines, verifier, printer)
    finally:
        await end_master(ssh_config, host.name)


async def _watch(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    engines: list[SyncEngine],
    verifier: Verifier | None,
    printer: Printer,
) -> int:
    connection = HostConnection(
        target_for(host, config), KnownHosts(paths.known_hosts), verifier, printer
    )
    try:
        await connection.open()
    except SshError as exc:
        raise CliError(str(exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    tasks = []
    for engine in engines:
        watcher = RemoteWatcher(
            lambda: connection.get(3600), engine.rule.remote, engine.remote_changed
        )
        tasks += [asyncio.create_task(engine.run()), asyncio.create_task(watcher.run())]
    print(f"{host.name}: watching for changes; Ctrl-C stops", flush=True)
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connection.close()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    config, paths = load(args)
    host = plain_host(config, args.name)
    running = registry.read(paths, host.name)
    if running is not None and running.alive and running.pid != os.getpid():
        # the `nbterm up` that owns the tunnel does the final sync itself as it closes
        os.kill(running.pid, signal.SIGTERM)
        deadline = time.monotonic() + FINAL_SYNC_SECONDS + 30
        while (
            running.alive
            and registry.read(paths, host.name) is not None
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        if running.alive and registry.read(paths, host.name) is not None:
            raise CliError(f"nbterm up (pid {running.pid}) did not finish closing in time")
        print(f"{host.name}: final sync done and tunnel closed by nbterm up (pid {running.pid})")
        return 0
    if not config.sync_rules_for(host.name):
        print(f"{host.name}: no tunnel open and no sync rules: nothing to do")
        return 0
    return asyncio.run(_final(config, paths, host, verifier_for(args)))


async def _final(config: LoadedConfig, paths: Paths, host: Host, verifier: Verifier | None) -> int:
    await _trust(config, paths, host, verifier)
    ssh_config = write_ssh_config(config, paths)
    printer = Printer(quiet_cycles=False)
    try:
        results = [
            await SyncEngine(rule, paths, ssh_config, printer).final_sync(FINAL_SYNC_SECONDS)
            for rule in config.sync_rules_for(host.name)
        ]
    finally:
        await end_master(ssh_config, host.name)
    ok = all(result.ok for result in results)
    print(f"{host.name}: final sync {'done' if ok else 'did NOT complete'}; no tunnel was open")
    return 0 if ok else 1
