"""``nbterm sync NAME [--watch]`` and ``nbterm down NAME``."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import time
from collections.abc import Coroutine
from typing import Any

from nbterm.cli.common import CliError, load
from nbterm.cli.ec2_flow import ensure_trusted, final_sync, reach, say
from nbterm.cli.hosts import get_host
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import Printer
from nbterm.safe_text import shown
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.host.down import SyncedHome
from nbterm.services.journal import Journal
from nbterm.services.remote import registry
from nbterm.services.remote.connection import HostConnection
from nbterm.services.remote.ssh import SshError
from nbterm.services.remote.ssh_config import end_master, write_ssh_config
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS, SyncEngine
from nbterm.services.sync.watcher import RemoteWatcher
from nbterm.services.tasks import supervise


def cmd_sync(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    if not config.sync_rules_for(host.name):
        raise CliError(f"{host.name} has no [[sync]] rules in the config")
    accept = args.accept_host_key
    if args.watch:
        return asyncio.run(_sync(config, paths, host, watch=True, accept_host_key=accept))
    guard = _SignalGuard()
    try:
        once = _sync(config, paths, host, watch=False, accept_host_key=accept, guard=guard)
        return asyncio.run(guard.run(once))
    except asyncio.CancelledError:
        say(host, "sync interrupted before it began")
        return 130


class _SignalGuard:
    """SIGINT, SIGTERM and SIGHUP end a one-shot sync the way Ctrl-C does: the running rsync
    is stopped and the shared connection closed before nbterm exits. A signal that arrives once
    that clean-up has begun lets it finish."""

    def __init__(self) -> None:
        self.closing = False
        self._sent = False

    async def run(self, work: Coroutine[Any, Any, int]) -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def stop() -> None:
            if not self._sent and not self.closing:
                self._sent = True
                task.cancel()

        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for sig in signals:
            loop.add_signal_handler(sig, stop)
        try:
            return await work
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)


async def _sync(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    watch: bool,
    accept_host_key: str | None,
    guard: _SignalGuard | None = None,
) -> int:
    where = await reach(config, host, accept_host_key=accept_host_key)
    if where is None:
        raise CliError(f"{host.name} is not running: `nbterm up {host.name}` starts it")
    known = await ensure_trusted(where, paths)
    ssh_config = write_ssh_config(config, paths, where.reach.addresses)
    printer = Printer(Journal(paths))
    engines = [
        SyncEngine(rule, paths, ssh_config, printer, retries=watch)
        for rule in config.sync_rules_for(host.name)
    ]
    try:
        if not watch:
            return await _once(host, engines)
        connection = HostConnection(where.reach.target, known, where.verifier, printer)
        try:
            await connection.open()
        except SshError as exc:
            raise CliError(str(exc)) from None
        return await _watch(host, engines, connection)
    finally:
        if guard is not None:
            guard.closing = True
        await end_master(ssh_config, host.name)


async def _once(host: Host, engines: list[SyncEngine]) -> int:
    """One cycle of every rule; exit 1 unless every staged file is home, saying which are not."""
    try:
        cycles = [await engine.cycle("now") for engine in engines]
    except asyncio.CancelledError:  # rsync was stopped on the way out (the engine's finally)
        say(host, "sync interrupted; what was already transferred comes home on the next sync")
        return 130
    pending = [(cycle.rule, path, why) for cycle in cycles for path, why in cycle.pending]
    for rule, path, why in pending:
        print(f"{rule}: not synced: {shown(path)} ({shown(why)})", flush=True)
    if pending or not all(cycle.ok for cycle in cycles):
        count = f": {len(pending)} file(s) not synced" if pending else ""
        say(host, f"sync did NOT complete{count}")
        return 1
    return 0


async def _watch(host: Host, engines: list[SyncEngine], connection: HostConnection) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    tasks = []
    for engine in engines:
        watcher = RemoteWatcher(
            lambda: connection.get(3600),
            engine.rule.remote,
            engine.remote_changed,
            on_path=engine.remote_rewritten,
        )
        tasks += [
            asyncio.create_task(
                supervise(f"sync {engine.label}", engine.run, functools.partial(say, host))
            ),
            asyncio.create_task(
                supervise(f"watch {engine.label}", watcher.run, functools.partial(say, host))
            ),
        ]
    say(host, "watching for changes; Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connection.close()
    return 0


def close_running_up(paths: Paths, host: Host) -> bool | None:
    """If an `nbterm up` owns this host, make it close (it final-syncs first) and return whether
    its final sync completed; None when no `nbterm up` runs for it.

    Only a record that proves to be that `nbterm up` is acted on: a stale one (the process was
    killed and its pid reused) or a forged one is said and ignored, never signalled.
    """
    running = registry.read(paths, host.name)
    if running is None or not running.alive or running.pid == os.getpid():
        return None
    if not running.verified:
        say(host, f"ignoring a stale tunnel record (pid {running.pid} is not its nbterm up)")
        registry.remove(paths, host.name)
        return None
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
    synced = registry.outcome(paths, host.name, running.pid)
    if synced is False:
        say(host, f"nbterm up (pid {running.pid}) closed the tunnel, but its final sync did NOT "
                  "complete")  # fmt: skip
        return False
    if synced is None:
        say(host, f"nbterm up (pid {running.pid}) closed without saying how its final sync went")
        return False
    say(host, f"final sync done and tunnel closed by nbterm up (pid {running.pid})")
    return True


def sync_then(
    config: LoadedConfig, paths: Paths, host: Host, *, accept_host_key: str | None
) -> SyncedHome:
    """Close a running `nbterm up` (it syncs as it closes), or sync here (saying how it went:
    done, nothing to sync and why, or did NOT complete)."""
    closed = close_running_up(paths, host)
    if closed is not None:
        return SyncedHome("done") if closed else SyncedHome("failed", "in nbterm up")
    synced = asyncio.run(final_sync(config, paths, host, accept_host_key=accept_host_key))
    say(host, synced.words)
    return synced


def cmd_down(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    ok = sync_then(config, paths, host, accept_host_key=args.accept_host_key).ok
    if host.is_ec2:
        if not ok:
            raise CliError(
                f"{host.name}: not stopping the instance, since the final sync did not complete "
                f"(`nbterm stop {host.name} --force` stops it anyway)"
            )
        try:
            instance = lifecycle.stop(
                Ec2(config.aws), host, note=lambda m: say(host, m), paths=paths
            )
        except Ec2Error as exc:
            raise CliError(str(exc)) from None
        say(host, f"{instance.id} is {instance.state}")
    return 0 if ok else 1
