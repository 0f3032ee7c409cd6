"""What the host commands share: picking a host, and asking about new host keys."""

from __future__ import annotations

import asyncio
import sys

from nbterm.cli.common import CliError
from nbterm.config import Host, LoadedConfig
from nbterm.locations import tildify
from nbterm.services.remote.host_keys import HostKeyQuestion, Verifier, accept_fingerprint


def get_host(config: LoadedConfig, name: str) -> Host:
    host = config.hosts.get(name)
    if host is None:
        known = ", ".join(config.hosts) or "none"
        raise CliError(f"no host named {name!r} in {tildify(config.path)} (hosts: {known})")
    return host


def ec2_host(config: LoadedConfig, name: str) -> Host:
    host = get_host(config, name)
    if not host.is_ec2:
        raise CliError(f"{name} is a plain SSH host (hostname = ...), not an EC2 instance")
    return host


def verifier_for(accept_host_key: str | None) -> Verifier | None:
    """--accept-host-key, else a y/N question on a terminal, else no way to trust a new key."""
    if accept_host_key:
        return accept_fingerprint(accept_host_key)
    if not sys.stdin.isatty():
        return None
    return ask


async def ask(question: HostKeyQuestion) -> bool:
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
