"""An EC2 host's life around the remote session: launch; find, start, wait, address; stop;
terminate. The cockpit and the CLI both call these, so they say and do the same.

Blocking (boto3 and socket waits): callers run these in threads. Each step reports a short note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from nbterm.config import Host, LoadedConfig
from nbterm.config.schema import TemplateConfig
from nbterm.locations import Paths, tildify
from nbterm.services.cloud import keypair
from nbterm.services.cloud.ec2 import Ec2, Ec2Error, wait_for_ssh
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.laptop import this_laptop
from nbterm.services.cloud.ssm import Ssm
from nbterm.services.remote import addresses
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import SshTarget, target_for
from nbterm.services.remote.ssh_config import Ec2Address, write_ssh_config

Note = Callable[[str], None]


class LaunchLeftOver(Ec2Error):
    """A launch failed halfway and what it launched could not be ended: it may still run."""


@dataclass(frozen=True)
class Reach:
    """How to reach a host now: its SSH target and, for EC2, the running instance."""

    target: SshTarget
    instance: Instance | None = None

    @property
    def addresses(self) -> dict[str, Ec2Address]:
        """The fresh EC2 address for the generated ssh config (none for a plain SSH host)."""
        if self.instance is None:
            return {}
        return {self.target.name: Ec2Address(self.instance.id, self.target.address)}


def ssh_address(host: Host, instance: Instance) -> str:
    """Where an EC2 host's SSH is reached: the config's ``address``, else the instance's public
    address ("" when it has none); through Systems Manager, its instance id."""
    if host.via_ssm:
        return instance.id
    return host.address or instance.address


def reach_for(config: LoadedConfig, host: Host, instance: Instance | None = None) -> Reach:
    """A plain SSH host as configured; an EC2 host at its instance's address (or the one the
    config gives, or through Systems Manager), under the instance id as its host-key alias."""
    if instance is None:
        return Reach(target_for(host, config))
    address = ssh_address(host, instance)
    return Reach(target_for(host, config, address=address, alias=instance.id), instance)


def wait_reachable(
    host: Host, instance: Instance, ssm: Ssm, *, note: Note, timeout: float, delay: float
) -> None:
    """Until the instance's SSH can be reached: its port answers like SSH, or (Systems
    Manager) SSM sees its agent online; nothing to wait for behind a jump host."""
    address = ssh_address(host, instance)
    if host.via_ssm:
        note(f"{instance.id} is running; waiting for Systems Manager to see its agent online")
        ssm.wait_online(instance.id, timeout=timeout, delay=max(delay, 1.0))
        return
    via = host.reached_through
    if via is None:
        note(f"{instance.id} is running at {address}; waiting for SSH")
        wait_for_ssh(address, host.port, timeout=timeout, delay=delay)
    else:  # its address may be private: only the way in can tell when its SSH answers
        note(f"{instance.id} is running at {address}; its SSH is reached through {via}")


def launch(
    ec2: Ec2,
    host: Host,
    template: TemplateConfig,
    *,
    note: Note,
    name: str | None = None,
    spot: bool | None = None,
    wait_ssh: bool = True,
    timeout: float = 600,
    delay: float = 2.0,
    on_launched: Callable[[str], None] = lambda instance_id: None,
    ssm: Ssm | None = None,
) -> Instance:
    """Launch an instance for ``host`` from ``template`` and wait until it runs (and, with
    ``wait_ssh``, until its SSH answers, unless a jump host is the way in). ``on_launched``
    hears the new instance's id as soon as EC2 answers (the caller's sentinel watches it).

    ``spot`` overrides the template's market (an on-demand launch has no spot price cap). A
    host that already has a live instance is refused: two instances for one host would be
    billed twice and only one of them ever used.
    """
    if spot is not None and spot != template.spot:
        template = replace(template, spot=spot, max_price=template.max_price if spot else None)
    existing = ec2.find(host)
    if existing is not None:
        raise Ec2Error(
            f"{host.name} already has {existing.id} ({existing.state}): "
            f"`nbterm up {host.name}` (u in the cockpit) uses it"
        )
    market = "spot" if template.spot else "on-demand"
    key = None
    if host.own_key and host.identity_file is not None:  # no key pair made by hand
        from nbterm.services.cloud import keypair  # asyncssh, only for this

        key = keypair.ensure_imported(ec2, keypair.ensure_key(host.identity_file))
        note(f"using nbterm's own key pair {key} ({tildify(host.identity_file)})")
    note(f"launching {template.instance_type} ({market}) from {template.ami}")
    instance = ec2.launch(host, template, name, key_name=key)
    on_launched(instance.id)
    note(f"launched {instance.id}; waiting for it to run")
    try:
        instance = ec2.wait_for(instance.id, "running", timeout=timeout, delay=delay)
        address = ssh_address(host, instance)
        if host.via_ssm and wait_ssh:
            wait_reachable(host, instance, ssm or Ssm(ec2.aws), note=note, timeout=timeout,
                           delay=delay)  # fmt: skip
        elif host.via_ssm:
            note(f"{instance.id} is running (reached through Systems Manager)")
        else:
            note(f"{instance.id} is running at {address or '(no public address)'}")
        if address and wait_ssh and host.reached_through is None:
            note(f"waiting for SSH on {address}:{host.port}")
            wait_for_ssh(address, host.port, timeout=timeout, delay=delay)
    except (Exception, KeyboardInterrupt) as exc:
        undo_launch(ec2, instance.id, note=note, why=str(exc) or type(exc).__name__)
        raise
    return instance


def undo_launch(ec2: Ec2, instance_id: str, *, note: Note, why: str) -> None:
    """A launch that failed halfway leaves nothing behind: no instance, no open spot request
    (the instance is new: nothing of the user's is on it). If that fails too, the error says
    what is left and how to end it."""
    note(f"the launch failed halfway ({why}): terminating {instance_id}, which is new and "
         "holds nothing of yours")  # fmt: skip
    try:
        now = ec2.get(instance_id)
        if now is not None and now.spot_request:
            ec2.cancel_spot_request(now.spot_request)
            note(f"cancelled its spot request {now.spot_request}")
        if now is not None and now.state not in ("terminated", "shutting-down"):
            ec2.terminate(instance_id)
    except Ec2Error as exc:
        raise LaunchLeftOver(
            f"the launch failed halfway ({why}), and {instance_id} could NOT be terminated "
            f"({exc}): it may still run and cost; terminate it in the EC2 console"
        ) from exc
    note(f"{instance_id} is terminated: nothing of this launch is left running")


def find_or_fail(ec2: Ec2, host: Host) -> Instance:
    instance = ec2.find(host)
    if instance is None:
        template = f"nbterm launch {host.template}" if host.template else "launch one"
        raise Ec2Error(
            f"{host.name}: no live instance"
            + (f" named {host.instance!r}" if host.instance else "")
            + f" ({template} first)"
        )
    return instance


def own_key_problem(host: Host, instance: Instance) -> str | None:
    """Why this laptop cannot log in to an instance launched with nbterm's own key, or None.
    An instance lets in only the key pair it was launched with (EC2's ``KeyName``): a second
    laptop has a key of its own, not the first laptop's."""
    key = host.identity_file
    if not host.own_key or key is None:
        return None
    launched_with = instance.key_name
    if not key.exists():
        which = f"the key pair {launched_with}" if launched_with else "nbterm's own key"
        return (
            f"{host.name}: {instance.id} lets in only {which}, and its private key is not on "
            f"this laptop ({tildify(key)} is missing). Copy it from the laptop that launched "
            "the instance, or set identity_file to a key the instance accepts."
        )
    try:
        ours = keypair.key_name(key)
    except (OSError, ValueError):
        return None  # an unreadable public key: the login itself will say what is wrong
    if launched_with and launched_with != ours:
        return (
            f"{host.name}: {instance.id} was launched with the key pair {launched_with}, "
            f"and this laptop's nbterm key is {ours}: only the laptop that launched it holds "
            f"its private key. Copy that laptop's {tildify(key)} (and .pub) here, or set "
            "identity_file to that key."
        )
    return None


def bring_up(
    ec2: Ec2,
    config: LoadedConfig,
    paths: Paths,
    host: Host,
    *,
    note: Note,
    state_timeout: float = 600,
    ssh_timeout: float = 300,
    delay: float = 2.0,
    before_start: Callable[[str], None] = lambda instance_id: None,
    on_start: Callable[[str], None] = lambda instance_id: None,
    ssm: Ssm | None = None,
) -> Reach:
    """Start the host's instance if it is stopped, wait until it runs and SSH answers, and
    rewrite the generated ssh config with its fresh address. ``before_start`` hears the
    instance id just before it is started (a sentinel is posted there), ``on_start`` as soon as
    this started it (whoever started it owns stopping it again on a failure)."""
    instance = find_or_fail(ec2, host)
    problem = own_key_problem(host, instance)
    if problem is not None:  # said before anything starts: nothing would let this laptop in
        raise Ec2Error(problem)
    if instance.state == "stopping":
        note(f"{instance.id} is stopping; waiting to start it again")
        instance = ec2.wait_for(instance.id, "stopped", timeout=state_timeout, delay=delay)
    if instance.state == "stopped":
        note(f"starting {instance.id} ({instance.type})")
        ec2.mark_stopped_by(instance.id, None)  # who stopped it last time is history now
        before_start(instance.id)
        instance = ec2.start(instance.id)
        on_start(instance.id)
    if instance.state != "running":
        note(f"waiting for {instance.id} to run")
        instance = ec2.wait_for(instance.id, "running", timeout=state_timeout, delay=delay)
    if not ssh_address(host, instance):
        raise Ec2Error(
            f'{host.name}: {instance.id} has no public address; set address = "..." for it '
            '(a private address you can reach, a port forward, a VPN), or connect = "ssm" '
            "to reach it through AWS Systems Manager"
        )
    wait_reachable(host, instance, ssm or Ssm(ec2.aws), note=note, timeout=ssh_timeout,
                   delay=delay)  # fmt: skip
    ready = reach_for(config, host, instance)
    write_ssh_config(config, paths, ready.addresses)
    return ready


def stop(
    ec2: Ec2,
    host: Host,
    *,
    note: Note,
    timeout: float = 600,
    delay: float = 2.0,
    paths: Paths | None = None,
    why: str = "as asked",
) -> Instance:
    """Stop the instance; with ``paths``, forget its address (a stopped instance loses it), and
    record which nbterm stopped it and ``why`` (every other attached nbterm says so)."""
    instance = find_or_fail(ec2, host)
    if paths is not None:
        addresses.update(paths, {host.name: None})
    if instance.state in ("stopped", "stopping"):
        note(f"{instance.id} is already {instance.state}")
        return instance
    note(f"stopping {instance.id}")
    if paths is not None:
        name = this_laptop(paths).name
        ec2.mark_stopped_by(instance.id, f"{name}|{why}|{time.time():.0f}")
    ec2.stop(instance.id)
    return ec2.wait_for(instance.id, "stopped", timeout=timeout, delay=delay)


def terminate(
    ec2: Ec2, host: Host, paths: Paths, *, note: Note, timeout: float = 600, delay: float = 2.0
) -> Instance:
    """Terminate, then forget the instance's host key (its id will never come back).

    A spot instance's persistent request is cancelled first: terminating an instance of an
    open persistent request makes AWS launch a new one, billed to nobody's knowledge."""
    instance = find_or_fail(ec2, host)
    if instance.spot_request:
        note(f"cancelling its spot request {instance.spot_request}, so AWS launches no new "
             "instance for it")  # fmt: skip
        ec2.cancel_spot_request(instance.spot_request)
    note(f"terminating {instance.id}")
    ec2.terminate(instance.id)
    addresses.update(paths, {host.name: None})
    done = ec2.wait_for(instance.id, "terminated", timeout=timeout, delay=delay)
    if KnownHosts(paths.known_hosts).forget(instance.id):
        note(f"forgot the host key of {instance.id}")
    return done
