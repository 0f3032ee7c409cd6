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
from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.guard import GuardSettings
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.laptop import this_laptop
from nbterm.services.cloud.lifecycle import Reach, reach_for, ssh_address
from nbterm.services.cloud.spending import Spend
from nbterm.services.host import sentinel
from nbterm.services.host.down import STOP_TAG_WORDS, Why
from nbterm.services.host.sentinel import Sentinel
from nbterm.services.host.session import Cloud, HostSession, Outside, Sink
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
    "Face",
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
        if instance.spot_interrupted:
            return f"{instance_id} is {instance.state} (spot interruption)"
        stopper = instance.stopper()
        if stopper is not None:
            return f"{instance_id} is {instance.state}: stopped by {stopper}"
        if "instance" in instance.state_reason.lower():  # Client.InstanceInitiatedShutdown
            return (f"{instance_id} is {instance.state}: powered off from inside (the idle "
                    "guard, or a shutdown on the instance)")  # fmt: skip
        reason = f" ({instance.state_reason})" if instance.state_reason else ""
        return (f"{instance_id} is {instance.state}{reason}: not by nbterm (the console, the "
                "AWS CLI or another tool)")  # fmt: skip
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
        address = ssh_address(host, now) if now is not None else ""
        if now is None or now.state != "running" or not address:
            return Relocation()
        await asyncio.to_thread(
            write_ssh_config, config, paths, {host.name: Ec2Address(instance_id, address)}
        )  # rsync follows it too
        return Relocation(target=target_for(host, config, address=address, alias=instance_id))

    return relocate


def outside_check(ec2: Ec2, instance_id: str) -> Callable[[], Awaitable[Outside | None]]:
    """What EC2 says from outside: a spot interruption (the instance's state and reason), or a
    stop decided elsewhere (another laptop, the guard, the console, AWS), with who did it."""

    async def check() -> Outside | None:
        now = await asyncio.to_thread(ec2.get, instance_id)
        if now is not None and now.state in ("pending", "running"):
            return None
        if now is not None and now.spot_interrupted:
            return ("spot", f"{now.state} ({now.state_reason})")
        gone = gone_words(now, instance_id)
        return None if gone is None else ("gone", gone)

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
        gpu_busy_percent=template.gpu_busy_percent,
        cpu_busy_cores=template.cpu_busy_cores,
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


@dataclass(frozen=True)
class Face:
    """What a face (the cockpit, the CLI) brings to a host's life: its own I/O, nothing more."""

    ask: Verifier | None
    """The face's question about a new host key (None: a new key is refused)."""
    on_event: Sink
    note: Note
    """Progress words before the session exists."""
    forward: ForwardMode = "inline"
    """Where the tunnel runs: in this loop, or a process of its own (both faces: a forwarder
    process keeps pace with ``ssh -L``; this loop's is for tests and embedding)."""
    console_keys: bool = True
    """Check a new EC2 instance's key against its console first (off when the user gave the
    exact fingerprint: their word is enough)."""
    install: Confirm | None = None
    """Asked whether to install what a host lacks (tmux, Jupyter); None: never, the error
    says how."""
    budget: bool = False
    """The session applies the daily budget to its own instance (``nbterm up``; the cockpit
    applies it to every instance at once)."""
    keep_running: bool = False
    """An up that fails after nbterm started the instance leaves it running, guarded where the
    guard can be armed, instead of stopping it again."""


def _with_command(config: LoadedConfig, name: str, command: str) -> LoadedConfig:
    host = config.hosts[name]
    changed = replace(host, jupyter=replace(host.jupyter, command=command))
    return replace(config, hosts={**config.hosts, name: changed})


class Watch:
    """The sentinel over the instance this up started (or the launch it took over): posted
    before the start, ended once the instance is guarded, in use or stopped again. Until then,
    an nbterm killed in the middle leaves the sentinel to stop the instance."""

    def __init__(self, paths: Paths, name: str, taken: Sentinel | None) -> None:
        self.paths, self.name = paths, name
        self.sentinel = taken
        self.started: list[str] = [taken.instance_id] if taken and taken.instance_id else []
        if taken is not None:
            taken.act("stop")  # a launch the up took over keeps its disk on a failure

    def before_start(self, instance_id: str) -> None:
        if self.sentinel is None:
            self.sentinel = sentinel.post(self.paths, self.name, "stop")
        self.sentinel.watch(instance_id)

    def end(self) -> None:
        if self.sentinel is not None:
            self.sentinel.disarm()

    def hand_over(self) -> None:
        """The starter could not stop it: the sentinel keeps trying on its own, now."""
        if self.sentinel is not None:
            self.sentinel.release()


async def open_host(
    config: LoadedConfig, paths: Paths, name: str, face: Face, launched: Sentinel | None = None
) -> OpenHost:
    """Bring ``name`` up; on any failure everything started is closed again, and an instance
    that nbterm started for this up is stopped again (or, with ``face.keep_running``, left
    running with its guard armed), and the note says which. ``launched``: the sentinel of a
    launch this up takes over (the instance counts as started by it)."""
    watch = Watch(paths, name, launched)
    try:
        opened = await _open_host(config, paths, name, face, watch)
    except BaseException as exc:
        if watch.started:
            await _after_failed_start(config, paths, name, face, watch, exc)
        else:
            watch.end()
        raise
    watch.end()  # in use now (and guarded, where its template asks)
    return opened


async def _after_failed_start(
    config: LoadedConfig,
    paths: Paths,
    name: str,
    face: Face,
    watch: Watch,
    exc: BaseException,
) -> None:
    """Nothing started is left behind unwatched: nbterm started the instance for an up that
    failed, so nothing of the person's ran on it since: stop it again (its disk is kept)."""
    host = config.hosts[name]
    instance_id = watch.started[0]
    why = shown(str(exc)) or type(exc).__name__
    if face.keep_running:
        face.note(await _guard_left_running(config, paths, host, instance_id, why))
        watch.end()
        return
    face.note(f"the up failed after nbterm started {instance_id} ({why}): stopping it again")
    try:
        stop = functools.partial(lifecycle.stop, paths=paths, why="the up that started it failed")
        stopped = await asyncio.to_thread(stop, Ec2(config.aws), host, note=face.note)
    except Ec2Error as error:
        face.note(f"{instance_id} could NOT be stopped ({error}): it runs and costs; "
                  f"nbterm keeps trying for {sentinel.PATIENCE / 60:.0f} min in the background "
                  f"(`nbterm stop {name}` stops it)")  # fmt: skip
        watch.hand_over()
        return
    watch.end()
    face.note(f"{stopped.id} is {stopped.state} again (its disk is kept)")


async def _guard_left_running(
    config: LoadedConfig, paths: Paths, host: Host, instance_id: str, why: str
) -> str:
    """--keep-running: the instance stays up after a failed up; the guard is armed if it can
    be (an SSH login that works and a template that sets a limit), and the words say which."""
    left = f"the up failed ({why}); {instance_id} is left running as asked"
    return f"{left}{await arm_guard(config, paths, host)}"


async def arm_guard(
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    ask: Verifier | None = None,
    *,
    console_keys: bool = True,
) -> str:
    """Arm the idle guard on the host's running instance outside any session (after a launch,
    or an up that failed): the words that follow "it runs", saying whether it is guarded.
    ``ask``: how a new host key is checked (its console's fingerprints first)."""
    from nbterm.services.cloud import guard

    template = config.templates.get(host.template or "")
    settings = guard_settings(host, template)
    if settings is None:
        return ", with NO idle guard (its template sets no idle_stop_minutes or max_hours)"
    try:
        where = await reach_running(config, host)
        if where is None:
            return ", but it is not running any more"
        me = this_laptop(paths)
        settings = replace(settings, laptop=me.id, by=me.name)
        verifier = key_check(config, where, ask, console_keys=console_keys)
        link = await connect(where.target, KnownHosts(paths.known_hosts), verifier)
        try:
            said = await guard.install(link, settings)
        finally:
            close_quietly(link)
    except Exception as error:  # noqa: BLE001 - said: the person decides
        return (f", and its idle guard could NOT be armed ({shown(str(error))}): stop it "
                f"(`nbterm stop {host.name}`), or `nbterm up {host.name}` arms it")  # fmt: skip
    return f"; {said}"


async def _open_host(
    config: LoadedConfig, paths: Paths, name: str, face: Face, watch: Watch
) -> OpenHost:
    configured = config.hosts[name].jupyter.command
    earlier = remembered(paths, name, configured)
    if earlier is not None:  # nbterm installed it for this host, instead of that command
        config = _with_command(config, name, earlier)
    install, note = face.install, face.note
    for _ in range(3):  # tmux, then Jupyter, then up
        try:
            return await _open(config, paths, name, face, watch)
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
    return await _open(config, paths, name, face, watch)


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
    config: LoadedConfig, paths: Paths, name: str, face: Face, watch: Watch
) -> OpenHost:
    host = config.hosts[name]
    if not host.is_ec2:
        session = HostSession(
            config, name, paths, verifier=face.ask, on_event=face.on_event,
            reach=reach_for(config, host), forward=face.forward,
        )  # fmt: skip
        return await _up(session, None)
    ec2 = Ec2(config.aws)
    bring_up = functools.partial(
        lifecycle.bring_up, note=face.note, before_start=watch.before_start,
        on_start=watch.started.append,
    )  # fmt: skip
    ready = await asyncio.to_thread(bring_up, ec2, config, paths, host)
    instance = ready.instance
    assert instance is not None

    async def stop_instance(why: Why) -> Instance:
        stop = functools.partial(lifecycle.stop, paths=paths, why=STOP_TAG_WORDS[why])
        return await asyncio.to_thread(stop, ec2, host, note=face.note)

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
        final_sync_grace=config.aws.final_sync_grace_minutes * 60.0,
        spend=_own_spend(config, paths, host, ec2) if face.budget else None,
        on_guarded=watch.end,
    )
    verifier = key_check(config, ready, face.ask, console_keys=face.console_keys, ec2=ec2)
    session = HostSession(
        config, name, paths, verifier=verifier, on_event=face.on_event, reach=ready,
        cloud=cloud, forward=face.forward,
    )  # fmt: skip
    return await _up(session, instance)


def _own_spend(
    config: LoadedConfig, paths: Paths, host: Host, ec2: Ec2
) -> Callable[[], Awaitable[Spend | None]] | None:
    """Headless: what the configured EC2 hosts' running instances cost today (the same ledger
    as the cockpit's), for the session to apply the daily budget to its own instance."""
    if config.aws.daily_budget is None:
        return None

    def look() -> Spend | None:
        from nbterm.services.cloud.pricing import rate_of
        from nbterm.services.cloud.spending import Ledger

        hosts = [h for h in config.hosts.values() if h.is_ec2]
        instances = {h.name: ec2.find(h) for h in hosts}
        rates = {
            name: rate_of(ec2, config.aws, i, paths.state_dir / "prices.json")
            for name, i in instances.items()
            if i is not None and i.state == "running"
        }
        ledger = Ledger(paths.state_dir / "spend.json")
        return ledger.observe(instances, rates, budget=config.aws.daily_budget)

    async def spend() -> Spend | None:
        return await asyncio.to_thread(look)

    return spend


async def _up(session: HostSession, instance: Instance | None) -> OpenHost:
    try:
        result = await session.up()
    except BaseException:
        await session.down(final_sync=False)
        raise
    return OpenHost(session, result, instance)
