"""Bringing one host up, for the cockpit and the CLI alike: one path, so the two cannot drift.

``open_host`` starts an EC2 instance if needed and waits for its SSH, chooses how a new host key
is checked (the EC2 console's fingerprints first, then the caller's question), builds the
:class:`HostSession` with everything EC2 can tell from outside (a spot interruption seen in the
instance's state, where the instance went when the link drops), and brings it up. The caller
only supplies the faces' own parts: how to ask about a host key, where events and notes go, and
where the tunnel runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from nbterm.config import Host, LoadedConfig
from nbterm.config.schema import TemplateConfig
from nbterm.locations import Paths
from nbterm.safe_text import shown
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.console_keys import console_verifier
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.guard import GuardSettings
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.lifecycle import Reach, reach_for
from nbterm.services.host_session import Cloud, HostSession, Sink
from nbterm.services.remote.connection import Relocation, Relocator
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.host_keys import KnownHosts, Verifier
from nbterm.services.remote.install import install_jupyter, remember, remembered
from nbterm.services.remote.jupyter import REMOTE_DIR, JupyterError, runtime_dir
from nbterm.services.remote.session import UpResult
from nbterm.services.remote.ssh import close_quietly, connect, run, target_for
from nbterm.services.remote.ssh_config import Ec2Address, write_ssh_config
from nbterm.services.sync.engine import FINAL_SYNC_SECONDS

__all__ = [
    "FINAL_SYNC_SECONDS",
    "OpenHost",
    "ec2_relocator",
    "key_check",
    "open_host",
    "outside_check",
    "reach_running",
]

Note = Callable[[str], None]
JUMPED_SSH_WAIT = 300.0
"""How long a new instance behind a jump host may take to answer SSH through it."""


@dataclass(frozen=True)
class OpenHost:
    session: HostSession
    result: UpResult
    instance: Instance | None


def gone_words(instance: Instance | None, instance_id: str) -> str | None:
    """Why there is nothing to reconnect to, or None while the instance runs (or starts)."""
    if instance is None or instance.state in ("terminated", "shutting-down"):
        return f"{instance_id} was terminated"
    if instance.state in ("stopped", "stopping"):
        reason = "spot interruption" if instance.spot_interrupted else instance.state_reason
        return f"{instance_id} is {instance.state}" + (f" ({reason})" if reason else "")
    return None


def ec2_relocator(
    ec2: Ec2, config: LoadedConfig, paths: Paths, host: Host, instance_id: str
) -> Relocator:
    """Asked when reconnecting keeps failing: EC2 says where the instance is now (a stop and
    start gives it a new address), or that it stopped (a spot interruption) or is gone."""

    async def relocate() -> Relocation:
        now = await asyncio.to_thread(ec2.get, instance_id)
        gone = gone_words(now, instance_id)
        if gone is not None:
            return Relocation(gone=gone)
        address = host.address or (now.address if now is not None else "")
        if now is None or now.state != "running" or not address:
            return Relocation()
        await asyncio.to_thread(
            write_ssh_config, config, paths, {host.name: Ec2Address(instance_id, address)}
        )  # rsync follows it too
        return Relocation(target=target_for(host, config, address=address, alias=instance_id))

    return relocate


def outside_check(ec2: Ec2, instance_id: str) -> Callable[[], Awaitable[str | None]]:
    """A spot interruption as EC2 reports it from outside (the instance's state and reason)."""

    async def check() -> str | None:
        now = await asyncio.to_thread(ec2.get, instance_id)
        if now is None or now.state in ("pending", "running"):
            return None
        if now.spot_interrupted:
            return f"{now.state} ({now.state_reason})"
        return None

    return check


def guard_settings(host: Host, template: TemplateConfig | None) -> GuardSettings | None:
    """The guard for an instance whose template sets ``idle_stop_minutes`` or ``max_hours``
    (and keeps ``guard`` on); it finds Jupyter in the runtime folder nbterm gives it."""
    if template is None or not template.guard:
        return None
    if template.idle_stop_minutes is None and template.max_hours is None:
        return None
    return GuardSettings(
        idle_minutes=template.idle_stop_minutes,
        max_hours=template.max_hours,
        runtime=runtime_dir(host.jupyter).removeprefix(f"{REMOTE_DIR}/"),
        grace_minutes=template.guard_grace_minutes,
        lease_minutes=template.guard_lease_minutes,
        power_off=template.power_off_command,
    )


async def reach_running(config: LoadedConfig, host: Host, ec2: Ec2 | None = None) -> Reach | None:
    """Where a host is now, starting nothing: None for an EC2 host whose instance is not
    running (its address is looked up afresh, never remembered from last time)."""
    if not host.is_ec2:
        return reach_for(config, host)
    found = await asyncio.to_thread((ec2 or Ec2(config.aws)).find, host)
    if found is None or found.state != "running":
        return None
    return reach_for(config, host, found)


def key_check(
    config: LoadedConfig,
    reach: Reach,
    ask: Verifier | None,
    *,
    console_keys: bool = True,
    ec2: Ec2 | None = None,
) -> Verifier | None:
    """How a new host key is checked: an EC2 instance's against the fingerprints its console
    printed (waiting for them a while), then ``ask``; a plain host's by ``ask`` alone.
    ``console_keys`` is False when the user gave the exact fingerprint (their word is enough)."""
    if reach.instance is None or not console_keys:
        return ask
    return console_verifier(
        ec2 or Ec2(config.aws), reach.instance.id, fallback=ask, wait=config.aws.console_key_wait
    )


Confirm = Callable[[str], Awaitable[bool]]


def _with_command(config: LoadedConfig, name: str, command: str) -> LoadedConfig:
    host = config.hosts[name]
    changed = replace(host, jupyter=replace(host.jupyter, command=command))
    return replace(config, hosts={**config.hosts, name: changed})


async def open_host(
    config: LoadedConfig,
    paths: Paths,
    name: str,
    *,
    ask: Verifier | None,
    on_event: Sink,
    note: Note,
    forward: ForwardMode = "inline",
    console_keys: bool = True,
    install: Confirm | None = None,
) -> OpenHost:
    """Bring ``name`` up; on any failure everything started is closed again.

    ``ask``: the face's own question about a new host key (None: a new key is refused).
    ``console_keys``: check a new EC2 instance's key against its console first (off when the
    user gave the exact fingerprint). ``note``: progress words before the session exists.
    ``install``: asked whether to install JupyterLab on a host that has no Jupyter (None:
    never; the error says how).
    """
    configured = config.hosts[name].jupyter.command
    earlier = remembered(paths, name, configured)
    if earlier is not None:  # nbterm installed it for this host, instead of that command
        config = _with_command(config, name, earlier)
    parts = (ask, on_event, note, forward, console_keys)
    for _ in range(3):  # tmux, then Jupyter, then up
        try:
            return await _open(config, paths, name, *parts)
        except JupyterError as exc:
            if exc.missing is None or install is None:
                raise
            if exc.missing == "tmux":
                if exc.fix is None or not await install(
                    f"{name} has no tmux, which keeps Jupyter running when the link drops. "
                    f"Install it with `{exc.fix}`?"
                ):
                    raise
                await _fix(config, paths, name, exc.fix, note)
                continue
            template = config.templates.get(config.hosts[name].template or "")
            packages = template.packages if template else ()
            extra = f" and {', '.join(packages)}" if packages else ""
            question = (
                f"{name} has no Jupyter. Install JupyterLab and ipykernel{extra} there, in "
                "~/.nbterm/jupyter (a Python environment of your own; no root, a minute or two)?"
            )
            if not await install(question):
                raise
            command = await _install(config, paths, name, packages, note)
            remember(paths, name, configured, command)
            config = _with_command(config, name, command)
    return await _open(config, paths, name, *parts)


async def _fix(config: LoadedConfig, paths: Paths, name: str, command: str, note: Note) -> None:
    """Install a missing system package with the remote's package manager (passwordless sudo)."""
    where = await reach_running(config, config.hosts[name])
    if where is None:
        raise JupyterError(f"{name} is not running any more: nothing to install tmux on")
    link = await connect(where.target, KnownHosts(paths.known_hosts), None)  # trusted by now
    try:
        note(f"running {command}")
        status, _out, err = await run(link, command, timeout=900)
    finally:
        close_quietly(link)
    if status != 0:
        raise JupyterError(f"`{command}` failed on the remote: {shown(err.strip()[-300:])}")


async def _install(
    config: LoadedConfig, paths: Paths, name: str, packages: Sequence[str], note: Note
) -> str:
    where = await reach_running(config, config.hosts[name])
    if where is None:
        raise JupyterError(f"{name} is not running any more: nothing to install Jupyter on")
    link = await connect(where.target, KnownHosts(paths.known_hosts), None)  # trusted by now
    try:
        settings = config.raw.jupyter
        return await install_jupyter(link, packages=packages, python=settings.install_python,
                                     pip_args=settings.install_pip_args, note=note)  # fmt: skip
    finally:
        close_quietly(link)


async def _open(
    config: LoadedConfig,
    paths: Paths,
    name: str,
    ask: Verifier | None,
    on_event: Sink,
    note: Note,
    forward: ForwardMode,
    console_keys: bool,
) -> OpenHost:
    host = config.hosts[name]
    if not host.is_ec2:
        session = HostSession(
            config, name, paths, verifier=ask, on_event=on_event, reach=reach_for(config, host),
            forward=forward,
        )  # fmt: skip
        return await _up(session, None)
    ec2 = Ec2(config.aws)
    ready = await asyncio.to_thread(lifecycle.bring_up, ec2, config, paths, host, note=note)
    instance = ready.instance
    assert instance is not None

    async def stop_instance() -> None:
        await asyncio.to_thread(
            functools.partial(lifecycle.stop, paths=paths), ec2, host, note=note
        )

    template = config.templates.get(host.template or "")
    cloud = Cloud(
        guard=guard_settings(host, template),
        max_hours=template.max_hours if template else None,
        launched_at=instance.launch_time,
        spot=instance.spot,
        idle_stop_minutes=template.idle_stop_minutes if template else None,
        stop_instance=stop_instance,
        outside_check=outside_check(ec2, instance.id),
        relocate=ec2_relocator(ec2, config, paths, host, instance.id),
        first_connect_wait=JUMPED_SSH_WAIT if host.reached_through else 0.0,
    )
    verifier = key_check(config, ready, ask, console_keys=console_keys, ec2=ec2)
    session = HostSession(
        config, name, paths, verifier=verifier, on_event=on_event, reach=ready, cloud=cloud,
        forward=forward,
    )  # fmt: skip
    return await _up(session, instance)


async def _up(session: HostSession, instance: Instance | None) -> OpenHost:
    try:
        result = await session.up()
    except BaseException:
        await session.down(final_sync=False)
        raise
    return OpenHost(session, result, instance)
