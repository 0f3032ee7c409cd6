"""``nbterm up``, ``status``, ``forget-host``, ``stop-jupyter``: the remote session, headless."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import socket
from dataclasses import dataclass

from nbterm.browser import open_private
from nbterm.cli.common import CliError, load
from nbterm.cli.ec2_flow import reach, say
from nbterm.cli.hosts import get_host, verifier_for
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths, tildify
from nbterm.presenters import Printer, gpu_lines, guard_words
from nbterm.safe_text import shown
from nbterm.services.cloud import guard
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.lifecycle import ssh_address
from nbterm.services.cloud.pricing import rate_of, run_cost
from nbterm.services.cloud.recovery import after_interruption
from nbterm.services.host.up import FINAL_SYNC_SECONDS, Face, open_host
from nbterm.services.journal import Journal
from nbterm.services.remote import jupyter, registry
from nbterm.services.remote.gpu import GpuSampler
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import Link, SshError, close_quietly, connect, target_for
from nbterm.services.remote.tunnel import PortUnavailableError


def cmd_up(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    return asyncio.run(
        _up(config, paths, host, accept_host_key=args.accept_host_key, open_browser=args.open,
            install_jupyter=args.install_jupyter, keep_running=args.keep_running)
    )  # fmt: skip


async def _up(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    accept_host_key: str | None,
    open_browser: bool,
    install_jupyter: bool = False,
    keep_running: bool = False,
) -> int:
    """Up until Ctrl-C; after a spot interruption, wait for capacity and go up again."""
    while True:
        code, ended, interrupted = await _up_once(
            config, paths, host, accept_host_key=accept_host_key, open_browser=open_browser,
            install_jupyter=install_jupyter, keep_running=keep_running,
        )  # fmt: skip
        if ended is None:
            return code
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        back = await after_interruption(
            Ec2(config.aws), ended, stopped=stop, note=lambda text: say(host, text),
            waiting=lambda: say(host, "nbterm brings it up again when AWS starts it (Ctrl-C "
                                      "stops waiting)"),
            interrupted=interrupted,
        )  # fmt: skip
        if back is None:
            return code
        say(host, f"capacity is back: {back.id} runs again; bringing {host.name} up again "
                  "(same local port and URL)")  # fmt: skip
        open_browser = False  # the tab that was open reconnects by itself


async def _said_yes(question: str) -> bool:
    """--install-jupyter: the question is answered on the command line."""
    return True


async def _up_once(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    accept_host_key: str | None,
    open_browser: bool,
    install_jupyter: bool = False,
    keep_running: bool = False,
) -> tuple[int, str | None, bool]:
    """One session: its exit code, the instance id when the session ended by itself (the
    instance stopped under it), for the caller to see whether it comes back, and whether the
    session saw a spot interruption."""
    try:
        opened = await open_host(
            config,
            paths,
            host.name,
            Face(
                ask=verifier_for(accept_host_key),
                on_event=Printer(Journal(paths)),
                note=lambda message: say(host, message),
                forward="process",  # at OpenSSH's speed, as the cockpit's (issue 25)
                console_keys=accept_host_key is None,  # an explicit fingerprint is the user's word
                install=_said_yes if install_jupyter else None,
                budget=True,  # no cockpit watches the budget for this process
                keep_running=keep_running,
            ),
        )
    except jupyter.JupyterError as exc:
        hint = ""
        if exc.missing == "jupyter" and not install_jupyter:
            hint = (
                f"\nOr let nbterm install JupyterLab there, in ~/.nbterm/jupyter (no root): "
                f"`nbterm up {host.name} --install-jupyter`."
            )
        raise CliError(f"{exc}{hint}") from None
    except (SshError, Ec2Error, PortUnavailableError) as exc:
        raise CliError(str(exc)) from None
    session, result = opened.session, opened.result
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    started = True
    try:
        registry.record(paths, host.name, result.local_port, result.server.port)
        print(f"{host.name}: open {result.url}", flush=True)
        if open_browser:
            open_private(paths, host.name, result.url)
        for forward in result.forwards:
            print(f"{host.name}: {forward.name} on {forward.url} (the remote's port "
                  f"{forward.remote_port})", flush=True)  # fmt: skip
            if forward.open_on_up and not open_private(
                paths, f"{host.name}-{forward.name}", forward.url
            ):
                print(f"{host.name}: {forward.name}: no browser found to open it", flush=True)
        ended = asyncio.create_task(session.ended.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ended, stopped):
            task.cancel()
        if session.ended.is_set():
            print(f"{host.name}: {shown(session.reason)}", flush=True)
            started = False  # already synced before the instance was stopped
    finally:
        if started and session.engines:
            print(f"{host.name}: final sync before closing", flush=True)
        final = None
        try:
            final = await session.down(final_sync=started, timeout=FINAL_SYNC_SECONDS)
        finally:
            # nothing to sync, or it was synced before an idle stop: complete
            unneeded = not session.engines or not started
            ok = unneeded or (final is not None and final.ok)
            registry.finish(paths, host.name, final_sync_ok=ok)  # last: `nbterm down` waits
    assert final is not None
    if session.engines and not final.ok:
        print(f"{host.name}: the final sync did not complete: see the messages above", flush=True)
    if session.remote.machine_gone:
        print(f"{host.name}: tunnel closed; {shown(session.remote.machine_gone)}: Jupyter went "
              "with it", flush=True)  # fmt: skip
    elif session.remote.jupyter_running:
        print(
            f"{host.name}: tunnel closed; Jupyter keeps running on the remote "
            f"(`nbterm up {host.name}` reattaches, `nbterm stop-jupyter {host.name}` stops it)",
            flush=True,
        )
    else:  # every message about the remote's state is true when printed
        print(f"{host.name}: tunnel closed; Jupyter is NOT running on the remote", flush=True)
    code = 0 if final.ok else 1
    by_itself = session.ended.is_set() and opened.instance is not None
    stopped_under = opened.instance.id if by_itself and opened.instance else None
    return code, stopped_under, session.interrupted


def cmd_forget_host(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    alias = host.name
    if host.is_ec2:  # its key is stored under the instance id
        try:
            instance = Ec2(config.aws).find(host)
        except Ec2Error as exc:
            raise CliError(str(exc)) from None
        if instance is None:
            print(f"{host.name} has no live instance; keys of terminated ones are already gone")
            return 0
        alias = instance.id
    removed = KnownHosts(paths.known_hosts).forget(alias)
    if removed:
        print(f"forgot {removed} host key(s) of {host.name}; the next connection asks again")
    else:
        print(f"nbterm had no host key for {host.name}")
    return 0


def cmd_stop_jupyter(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    return asyncio.run(_stop_jupyter(config, paths, host, accept_host_key=args.accept_host_key))


async def _stop_jupyter(
    config: LoadedConfig, paths: Paths, host: Host, *, accept_host_key: str | None
) -> int:
    where = await reach(config, host, accept_host_key=accept_host_key)
    if where is None:
        print(f"{host.name}: the instance is not running, so neither is Jupyter")
        return 0
    try:
        link = await connect(where.reach.target, KnownHosts(paths.known_hosts), where.verifier)
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
    config, paths = load(args.config)
    return asyncio.run(_status(config, paths))


@dataclass(frozen=True)
class Seen:
    """What runs on a host, as ``status`` says it."""

    jupyter: str
    guard: str | None = None
    """The idle guard (EC2), None where there is none to ask."""
    gpus: tuple[str, ...] = ()


async def _remote_jupyter(
    config: LoadedConfig, paths: Paths, host: Host, instance: Instance | None
) -> Seen:
    """What runs on the host: its Jupyter, its GPUs, and (EC2) the idle guard beside it."""
    if host.is_ec2:
        if instance is None or instance.state != "running":
            return Seen("not running (the instance is not)")
        target = target_for(host, config, address=ssh_address(host, instance), alias=instance.id)
    else:
        target = target_for(host, config)
    try:
        link = await asyncio.wait_for(connect(target, KnownHosts(paths.known_hosts), None), 10)
    except SshError as exc:
        return Seen(f"unreachable: {exc}")
    except TimeoutError:
        return Seen("unreachable: no answer within 10s")

    async def the_link() -> Link:
        return link

    guarded = None
    gpus: tuple[str, ...] = ()
    try:
        server = await jupyter.discover(link, host.jupyter)
        if host.is_ec2:
            state = await guard.read_state(link)
            guarded = guard_words(state.report(host.name)) if state else "not installed"
        cards = await GpuSampler(host.name, the_link, lambda _sample: None).once()
        gpus = tuple(gpu_lines(cards or ()))
    except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
        return Seen(f"error: {exc}", guarded, gpus)
    finally:
        close_quietly(link)
    if server is None:
        return Seen("not running", guarded, gpus)
    return Seen(f"running (pid {server.pid}, port {server.port}, {server.root_dir})", guarded, gpus)


def _tunnel_words(paths: Paths, name: str) -> str:
    """Whose tunnel this host has on this laptop (an `nbterm up`'s or the cockpit's), and
    whether its port takes a connection now."""
    tunnel = registry.read(paths, name)
    whose = f"nbterm up, pid {tunnel.pid}" if tunnel is not None else ""
    if tunnel is None or not tunnel.alive:
        tunnel = registry.read_cockpit(paths, name)
        whose = f"the cockpit, pid {tunnel.pid}" if tunnel is not None else ""
    if tunnel is None:
        return "no tunnel"
    try:
        socket.create_connection(("127.0.0.1", tunnel.local_port), timeout=1.0).close()
        answers = "listening"
    except OSError as exc:
        answers = f"NOT listening now: {exc.strerror or exc}"
    return f"tunnel http://127.0.0.1:{tunnel.local_port}/ ({whose}; {answers})"


async def _status(config: LoadedConfig, paths: Paths) -> int:
    if not config.hosts:
        print(f"no hosts in {tildify(config.path)}")
        return 0
    instances: dict[str, Instance | None] = {}
    ec2_hosts = [host for host in config.hosts.values() if host.is_ec2]
    if ec2_hosts:
        ec2 = Ec2(config.aws)
        try:
            found = await asyncio.gather(*(asyncio.to_thread(ec2.find, h) for h in ec2_hosts))
            instances = dict(zip((h.name for h in ec2_hosts), found, strict=True))
        except Ec2Error as exc:
            print(f"EC2: {exc}")
    remote = await asyncio.gather(
        *(
            _remote_jupyter(config, paths, host, instances.get(host.name))
            for host in config.hosts.values()
        )
    )
    total = 0.0
    for host, seen in zip(config.hosts.values(), remote, strict=True):
        tunnel_text = _tunnel_words(paths, host.name)
        kind = "EC2" if host.is_ec2 else f"{host.user + '@' if host.user else ''}{host.hostname}"
        print(f"{host.name}  [{kind}]")
        if host.is_ec2:
            line, cost = _describe(config, paths, instances.get(host.name))
            total += cost
            print(f"  {line}")
        print(f"  {tunnel_text}")
        print(f"  jupyter: {shown(seen.jupyter)}")  # (the remote's words: its root dir, errors)
        if seen.guard is not None:
            print(f"  idle guard: {shown(seen.guard)}")
        for line in seen.gpus:
            print(f"  {line}")
        for rule in config.sync_rules_for(host.name):
            print(f"  sync {rule.remote} -> {tildify(rule.local)} every {rule.interval}s")
    if ec2_hosts:
        await _other_instances(config, paths, instances)
        print(f"running EC2 instances so far: ${total:.2f}")
    return 0


async def _other_instances(
    config: LoadedConfig, paths: Paths, instances: dict[str, Instance | None]
) -> None:
    """Instances nbterm launched whose host is no longer in the config: they still cost."""
    known = {i.id for i in instances.values() if i is not None}
    try:
        managed = await asyncio.to_thread(Ec2(config.aws).managed, [])
    except Ec2Error:
        return
    for instance in managed:
        if instance.id not in known:
            print(shown(f"not in the config (launched for {instance.host or '?'}): {instance.id} "
                        f"{instance.state} {instance.type}"))  # fmt: skip
    for line in await asyncio.to_thread(spot_request_lines, Ec2(config.aws)):
        print(line)


def spot_request_lines(ec2: Ec2) -> list[str]:
    """Open spot requests with no instance: AWS may still launch one for them, and bill it
    (a persistent request outlives a terminated instance unless it was cancelled). Said, never
    cancelled here: nbterm may not have made them."""
    try:
        requests = ec2.open_spot_requests()
    except Ec2Error as exc:
        return [f"spot requests: {exc}"]
    return [
        shown(f"an open spot request with no instance: {request} ({state}): AWS may launch one "
              "for it; `aws ec2 cancel-spot-instance-requests --spot-instance-request-ids "
              f"{request}` cancels it")
        for request, state, instance in requests
        if not instance
    ]  # fmt: skip


def _describe(config: LoadedConfig, paths: Paths, instance: Instance | None) -> tuple[str, float]:
    """A line about the instance, and its cost so far (0 when unknown or not running)."""
    if instance is None:
        return "no live instance", 0.0
    market = "spot" if instance.spot else "on-demand"
    text = f"{instance.id} {instance.state} {instance.type} {market} {instance.az}"
    if instance.state != "running":
        return text, 0.0
    now = dt.datetime.now(dt.UTC)
    rate = rate_of(Ec2(config.aws), config.aws, instance, paths.state_dir / "prices.json", now)
    hours = instance.uptime_hours(now)
    if rate is None:
        return f"{text}, up {hours:.1f} h, price unknown", 0.0
    cost = run_cost(rate, instance, now)  # at the prices it ran at (spot: its zone's history)
    return f"{text}, ${rate.now:.4f}/h, up {hours:.1f} h, ${cost:.2f} so far", cost
