"""``nbterm forward HOST REMOTE_PORT [LOCAL_PORT]``: one more port of a host, until Ctrl-C.

For a port the config does not name (a Streamlit app started from a cell, a debugger): it
listens on 127.0.0.1 only, in the same forwarder process as a session's tunnel (its own SSH
connection, host key checked, healed across drops), and says what the remote's port answers
whenever that changes. It starts nothing: an EC2 host's instance must be running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from nbterm.cli.common import CliError, load
from nbterm.cli.ec2_flow import ensure_trusted, reach, say
from nbterm.cli.hosts import get_host
from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.presenters import Printer
from nbterm.services.journal import Journal
from nbterm.services.remote.forward import ProcessForward
from nbterm.services.remote.lane import LaneSpec
from nbterm.services.remote.probe import ProbeError, probe_port
from nbterm.services.remote.ssh import SshError
from nbterm.services.remote.ssh_config import write_ssh_config
from nbterm.services.remote.tunnel import PortUnavailableError

PROBE_EVERY = 5.0
"""Seconds between looks at what the remote's port answers (said when it changes)."""


def cmd_forward(args: argparse.Namespace) -> int:
    config, paths = load(args.config)
    host = get_host(config, args.name)
    return asyncio.run(
        _forward(config, paths, host, args.remote_port, args.local_port,
                 accept_host_key=args.accept_host_key)
    )  # fmt: skip


async def _forward(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    remote_port: int,
    local_port: int | None,
    *,
    accept_host_key: str | None,
) -> int:
    where = await reach(config, host, accept_host_key=accept_host_key)
    if where is None:
        raise CliError(
            f"{host.name}: its instance is not running; `nbterm up {host.name}` starts it "
            "(a forward starts nothing)"
        )
    known = await ensure_trusted(where, paths)
    wanted = local_port or remote_port
    lane = LaneSpec.of(paths, host.name)  # its bytes through an OpenSSH master of its own
    if lane is not None:  # (which reads the host's current address there)
        await asyncio.to_thread(write_ssh_config, config, paths, where.reach.addresses)
    forward = ProcessForward(
        where.reach.target, known, wanted,
        on_link=Printer(Journal(paths)), on_notice=lambda text: say(host, text), lane=lane,
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            port = await forward.open(remote_port)
        except (SshError, PortUnavailableError) as exc:
            raise CliError(str(exc)) from None
        busy = f" (port {wanted} was taken)" if port != wanted else ""
        say(host, f"the remote's port {remote_port} on http://127.0.0.1:{port}/{busy}; "
                  "Ctrl-C closes it")  # fmt: skip
        watching = asyncio.create_task(_watch(host, port, remote_port))
        try:
            await stop.wait()
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    finally:
        await forward.close()
    say(host, f"closed the forward of port {remote_port}")
    return 0


async def _watch(host: Host, port: int, remote_port: int) -> None:
    """Say what the remote's port answers, at first and whenever that changes."""
    said = ""
    while True:
        try:
            answer = await probe_port(port, timeout=3.0)
        except ProbeError as exc:
            words = str(exc)
        else:
            words = {
                "http": f"answers {answer.words}",
                "tcp": "answers (not HTTP)",
                "silent": "takes connections and says nothing (not HTTP, or still starting)",
                "closed": "nothing listens there (yet)",
            }[answer.kind]
        if words != said:
            say(host, f"port {remote_port}: {words}")
            said = words
        await asyncio.sleep(PROBE_EVERY)
