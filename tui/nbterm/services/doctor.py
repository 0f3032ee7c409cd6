"""``nbterm config check --online``: does what the config describes work from here, now?

AWS: the credentials are accepted (STS says whose they are; an expired SSO session says
`aws sso login --profile P`) and each EC2 host's instance is found, with its state; for one
reached through Systems Manager, whether this laptop has the AWS CLI and its
session-manager-plugin, and whether SSM sees the running instance's agent online. SSH: each
plain host answers, its host key is the one nbterm trusts (nothing is trusted here: an unknown
key is reported, not accepted), and the login works, with tmux and the Jupyter command there.
Nothing is started, stopped or written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncssh

from nbterm.config import Host, LoadedConfig
from nbterm.locations import Paths
from nbterm.services.cloud.aws import caller_identity
from nbterm.services.cloud.ec2 import Ec2, Ec2Error, explain
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.ssm import AGENT_ADVICE, PLUGIN, Ssm, local_tools
from nbterm.services.remote import jupyter
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import (
    HostKeyUnknownError,
    SshError,
    close_quietly,
    connect,
    target_for,
)


@dataclass(frozen=True)
class Finding:
    subject: str
    ok: bool
    detail: str


async def _ec2_findings(config: LoadedConfig, hosts: list[Host]) -> list[Finding]:
    try:
        who = await asyncio.to_thread(caller_identity, config.aws)
    except Exception as exc:  # noqa: BLE001 - said in words that name the fix
        return [
            Finding("AWS", False, str(explain(exc, "checking the credentials", config.aws.profile)))
        ]
    ec2, ssm = Ec2(config.aws), Ssm(config.aws)
    findings = [_plugin_finding()] if any(host.via_ssm for host in hosts) else []
    for host in hosts:
        try:
            instance = await asyncio.to_thread(ec2.find, host)
        except Ec2Error as exc:  # the credentials or the region: the same for every host
            return [Finding("AWS", False, str(exc))]
        if instance is None:
            what = host.instance or f"template {host.template}"
            findings.append(Finding(host.name, True, f"no instance of {what} yet (nbterm launch)"))
        elif host.via_ssm:
            findings.append(await _ssm_finding(ssm, host, instance))
        else:
            findings.append(Finding(host.name, True, f"{instance.id} {instance.state}"))
    return [Finding("AWS", True, f"the credentials are accepted: {who}"), *findings]


def _plugin_finding() -> Finding:
    missing = local_tools()
    if missing:
        return Finding("Systems Manager", False, "; ".join(missing))
    return Finding("Systems Manager", True, f"the AWS CLI and its {PLUGIN} are here")


async def _ssm_finding(ssm: Ssm, host: Host, instance: Instance) -> Finding:
    """Whether SSM sees a running instance's agent (a stopped one is asked about when it runs)."""
    if instance.state != "running":
        return Finding(host.name, True, f"{instance.id} {instance.state} (reached through "
                       "Systems Manager; its agent is asked about when it runs)")  # fmt: skip
    try:
        agent = await asyncio.to_thread(ssm.agent, instance.id)
    except Ec2Error as exc:
        return Finding(host.name, False, str(exc))
    if agent.online:
        version = f" (agent {agent.agent_version})" if agent.agent_version else ""
        return Finding(host.name, True, f"{instance.id} running; Systems Manager sees its agent "
                       f"online{version}")  # fmt: skip
    said = "has never registered" if agent.ping == "unknown" else f"is {agent.ping}"
    return Finding(host.name, False, f"{instance.id} running, but Systems Manager does not see "
                   f"its agent online (it {said}): {AGENT_ADVICE}")  # fmt: skip


async def _ssh_finding(config: LoadedConfig, paths: Paths, host: Host) -> Finding:
    target = target_for(host, config)
    try:
        link = await connect(target, KnownHosts(paths.known_hosts), verifier=None)
    except HostKeyUnknownError:
        return Finding(
            host.name,
            False,
            f"its host key is not trusted yet: run `nbterm up {host.name}` once to check it",
        )
    except SshError as exc:
        return Finding(host.name, False, str(exc))
    try:
        await jupyter.preflight(link, host.jupyter)
    except jupyter.JupyterError as exc:  # says what is missing and how to get it
        return Finding(host.name, False, f"SSH login works, but {exc}")
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        return Finding(host.name, False, f"logged in, but a command did not run: {exc}")
    finally:
        close_quietly(link)
    return Finding(
        host.name, True, f"SSH login works ({target.login}@{target.where}); tmux and Jupyter found"
    )


async def online_findings(config: LoadedConfig, paths: Paths) -> list[Finding]:
    ec2_hosts = [host for host in config.hosts.values() if host.is_ec2]
    plain = [host for host in config.hosts.values() if not host.is_ec2]
    jobs = [_ssh_finding(config, paths, host) for host in plain]
    ssh, ec2 = await asyncio.gather(
        asyncio.gather(*jobs),
        _ec2_findings(config, ec2_hosts) if ec2_hosts else asyncio.sleep(0, result=[]),
    )
    return [*ec2, *ssh]
