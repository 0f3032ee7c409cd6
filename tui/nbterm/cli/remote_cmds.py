"""``nbterm up``, ``status``, ``forget-host``, ``stop-jupyter``: the remote session, headless."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import webbrowser
from typing import Any

from nbterm.cli.common import CliError, load
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths, tildify
from nbterm.services.remote import jupyter, registry
from nbterm.services.remote.events import (
    ConnectionChanged,
    HostKeyTrusted,
    JupyterReady,
    RemoteEvent,
    TunnelHealth,
    TunnelOpened,
)
from nbterm.services.remote.host_keys import (
    HostKeyQuestion,
    KnownHosts,
    Verifier,
    accept_fingerprint,
)
from nbterm.services.remote.session import Session
from nbterm.services.remote.ssh import SshError, close_quietly, connect, target_for
from nbterm.services.remote.tunnel import PortUnavailableError


def register(commands: Any) -> None:
    up = commands.add_parser(
        "up", help="connect, start or reattach Jupyter, and keep a tunnel open until Ctrl-C"
    )
    up.add_argument("name", help="host name from the config")
    up.add_argument("--open", action="store_true", help="open the notebook in the browser")
    _add_accept(up)
    up.set_defaults(handler=cmd_up)

    status = commands.add_parser("status", help="hosts, open tunnels and remote Jupyter servers")
    status.set_defaults(handler=cmd_status)

    forget = commands.add_parser("forget-host", help="forget a host's stored SSH host key")
    forget.add_argument("name", help="host name from the config")
    forget.set_defaults(handler=cmd_forget_host)

    stop = commands.add_parser(
        "stop-jupyter", help="stop the Jupyter server nbterm runs on a host (kernels end)"
    )
    stop.add_argument("name", help="host name from the config")
    _add_accept(stop)
    stop.set_defaults(handler=cmd_stop_jupyter)


def _add_accept(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-host-key",
        metavar="FINGERPRINT",
        help="trust a new host key without asking if it has this SHA256 fingerprint",
    )


def _plain_host(config: LoadedConfig, name: str) -> Host:
    host = config.hosts.get(name)
    if host is None:
        known = ", ".join(config.hosts) or "none"
        raise CliError(f"no host named {name!r} in {tildify(config.path)} (hosts: {known})")
    if host.is_ec2:
        raise CliError(
            f"{name} is an EC2 host: bringing EC2 instances up from nbterm is not available yet; "
            "plain SSH hosts (hostname = ...) work today"
        )
    return host


def _verifier(args: argparse.Namespace) -> Verifier | None:
    if args.accept_host_key:
        return accept_fingerprint(args.accept_host_key)
    if not sys.stdin.isatty():
        return None
    return _ask


async def _ask(question: HostKeyQuestion) -> bool:
    print(
        f"The host key of {question.host!r} ({question.address}:{question.port}) is not known "
        "to nbterm yet.\n"
        f"  {question.key_type} {question.sha256}\n"
        "Compare it with the fingerprint the machine's owner or console shows. "
        f"It will be stored under {question.alias!r}.",
        flush=True,
    )
    answer = await asyncio.to_thread(input, "Trust this key and connect? [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


class _Printer:
    """One line per change, for people and scripts reading ``nbterm up``."""

    def __init__(self) -> None:
        self.last_state: str | None = None

    def __call__(self, event: RemoteEvent) -> None:
        line = self._line(event)
        if line:
            print(f"{event.host}: {line}", flush=True)

    def _line(self, event: RemoteEvent) -> str | None:
        if isinstance(event, ConnectionChanged):
            if event.state == "connecting":
                return f"connecting to {event.message}"
            if event.state == "reconnecting" and event.retry_in is not None and not event.message:
                return f"reconnecting (attempt {event.attempt}, in {event.retry_in:.1f}s)"
            if event.state in ("lost", "reconnecting", "down") and event.message:
                return f"{event.state}: {event.message}"
            if event.state == "connected" and event.attempt:
                return f"reconnected (reconnect #{event.attempt})"
            return None
        if isinstance(event, HostKeyTrusted):
            return f"trusted host key {event.key_type} {event.sha256} (stored as {event.alias!r})"
        if isinstance(event, JupyterReady):
            how = "started" if event.started else "reattached to running"
            return f"{how} Jupyter (pid {event.pid}, remote port {event.remote_port})"
        if isinstance(event, TunnelOpened):
            if event.fell_back:
                return f"local port {event.wanted_port} is taken: using {event.local_port} instead"
            return None
        if isinstance(event, TunnelHealth):
            if event.state == self.last_state:
                return None
            self.last_state = event.state
            detail = event.message
            if event.latency_ms is not None:
                detail = f"{event.latency_ms:.1f} ms, {event.kernels} kernel(s)" + (
                    f"; {detail}" if detail else ""
                )
            return f"tunnel {event.state}" + (f" ({detail})" if detail else "")
        return None


def cmd_up(args: argparse.Namespace) -> int:
    config, paths = load(args)
    host = _plain_host(config, args.name)
    return asyncio.run(_up(config, paths, host, args))


async def _up(config: LoadedConfig, paths: Paths, host: Host, args: argparse.Namespace) -> int:
    session = Session.for_host(
        config, host.name, paths, verifier=_verifier(args), on_event=_Printer()
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            result = await session.up()
        except (SshError, jupyter.JupyterError, PortUnavailableError) as exc:
            raise CliError(str(exc)) from None
        registry.record(paths, host.name, result.local_port, result.server.port)
        print(f"{host.name}: open {result.url}", flush=True)
        if args.open:
            webbrowser.open(result.url)
        await stop.wait()
    finally:
        registry.remove(paths, host.name)
        await session.down()
    print(
        f"{host.name}: tunnel closed; Jupyter keeps running on the remote "
        f"(`nbterm up {host.name}` reattaches, `nbterm stop-jupyter {host.name}` stops it)",
        flush=True,
    )
    return 0


def cmd_forget_host(args: argparse.Namespace) -> int:
    config, paths = load(args)
    host = config.hosts.get(args.name)
    if host is None:
        raise CliError(f"no host named {args.name!r} in {tildify(config.path)}")
    if host.is_ec2:
        raise CliError(f"{args.name} is an EC2 host: its keys are stored under its instance id")
    removed = KnownHosts(paths.known_hosts).forget(host.name)
    if removed:
        print(f"forgot {removed} host key(s) of {host.name}; the next connection asks again")
    else:
        print(f"nbterm had no host key for {host.name}")
    return 0


def cmd_stop_jupyter(args: argparse.Namespace) -> int:
    config, paths = load(args)
    host = _plain_host(config, args.name)
    return asyncio.run(_stop_jupyter(config, paths, host, _verifier(args)))


async def _stop_jupyter(
    config: LoadedConfig, paths: Paths, host: Host, verifier: Verifier | None
) -> int:
    target = target_for(host, config)
    try:
        link = await connect(target, KnownHosts(paths.known_hosts), verifier)
    except SshError as exc:
        raise CliError(str(exc)) from None
    try:
        stopped = await jupyter.stop(link, host.jupyter)
    finally:
        close_quietly(link)
    print(
        f"{host.name}: " + ("Jupyter stopped" if stopped else "no Jupyter of nbterm's was running")
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config, paths = load(args)
    return asyncio.run(_status(config, paths))


async def _remote_jupyter(config: LoadedConfig, paths: Paths, host: Host) -> str:
    if host.is_ec2:
        return "EC2 (not looked up yet)"
    target = target_for(host, config)
    try:
        link = await asyncio.wait_for(connect(target, KnownHosts(paths.known_hosts), None), 10)
    except SshError as exc:
        return f"unreachable: {exc}"
    except TimeoutError:
        return "unreachable: no answer within 10s"
    try:
        server = await jupyter.discover(link, host.jupyter)
    except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
        return f"error: {exc}"
    finally:
        close_quietly(link)
    if server is None:
        return "not running"
    return f"running (pid {server.pid}, port {server.port}, {server.root_dir})"


async def _status(config: LoadedConfig, paths: Paths) -> int:
    if not config.hosts:
        print(f"no hosts in {tildify(config.path)}")
        return 0
    remote = await asyncio.gather(
        *(_remote_jupyter(config, paths, host) for host in config.hosts.values())
    )
    for host, jupyter_state in zip(config.hosts.values(), remote, strict=True):
        tunnel = registry.read(paths, host.name)
        if tunnel is not None and tunnel.alive:
            tunnel_text = f"tunnel http://127.0.0.1:{tunnel.local_port}/ (nbterm pid {tunnel.pid})"
        else:
            tunnel_text = "no tunnel"
        kind = "EC2" if host.is_ec2 else f"{host.user + '@' if host.user else ''}{host.hostname}"
        print(f"{host.name}  [{kind}]")
        print(f"  {tunnel_text}")
        print(f"  jupyter: {jupyter_state}")
    return 0
