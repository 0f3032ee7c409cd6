"""The OpenSSH client config nbterm generates from the TOML file.

rsync (``-e "ssh -F FILE"``) and ``nbterm ssh NAME`` use it; people who want plain ``ssh NAME`` can
``Include`` it. Every Host entry checks host keys strictly against nbterm's own known-hosts file,
under an alias that never changes with the address (the instance id for EC2), and reuses one
connection per host (ControlMaster), which makes each rsync cycle several times cheaper.

Every option is written inside the host's own ``Host`` block (no ``Host *``), so including the
file in ``~/.ssh/config`` changes nothing for the user's other hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

from nbterm.config.model import Host, LoadedConfig
from nbterm.files import write_private
from nbterm.locations import Paths, ensure_private_tree
from nbterm.services.remote import addresses
from nbterm.services.remote.addresses import Ec2Address
from nbterm.services.remote.jump import LiteralJump
from nbterm.services.remote.ssh import ssm_proxy_command

__all__ = ["Ec2Address", "end_master", "render_ssh_config", "write_ssh_config"]

CONTROL_PERSIST_SECONDS = 600
SOCKET_PATH_MAX = 104 if sys.platform == "darwin" else 108
"""The longest Unix socket path, terminating NUL included (``sun_path``)."""
CONTROL_NAME = 40 + 17
"""``/%C`` is a 40-character hash; while it sets a socket up, ssh binds it with a
``.XXXXXXXXXXXXXXXX`` suffix first."""


def control_path_fits(paths: Paths) -> bool:
    """Whether OpenSSH can make its control sockets in nbterm's runtime folder: ssh refuses a
    ControlPath that is too long (every rsync would fail), so then connections are not shared."""
    return len(os.fsencode(paths.control_dir)) + 1 + CONTROL_NAME < SOCKET_PATH_MAX


def host_key_alias(host: Host, ec2: Ec2Address | None = None) -> str:
    """The name a host's key is stored under: its instance id on EC2, its nbterm name otherwise.

    Never the address: a recycled cloud IP or DNS name must not inherit trust.
    """
    if host.is_ec2:
        if ec2 is None:
            raise ValueError(f"{host.name} is an EC2 host and its instance is not known yet")
        return ec2.instance_id
    return host.name


def _quote(path: str, suffix: str = "") -> str:
    """Quote a path for ssh_config, escaping ``%`` (ssh expands tokens in paths).

    ``suffix`` is appended unescaped, for tokens that ssh should expand.
    """
    return '"' + path.replace("%", "%%") + suffix + '"'


def render_host(
    host: Host,
    paths: Paths,
    ec2: Ec2Address | None = None,
    named: Collection[str] = (),
    ssm_command: str | None = None,
) -> list[str]:
    """``named``: the config's host names (a jump host that is not one of them is literal);
    ``ssm_command``: the proxy command of a host reached through Systems Manager."""
    if host.is_ec2 and ec2 is None:
        what = host.instance or f"(from template {host.template})"
        return [
            f"# {host.name}: EC2 instance {what} has no known address yet;"
            " nbterm rewrites this file when it looks the address up.",
        ]
    address = ec2.address if ec2 is not None else host.hostname
    jump = None
    if host.via_ssm and ec2 is not None:
        address = ec2.instance_id  # %h of the command: SSM reaches an instance by its id
        if ssm_command is None:
            raise ValueError(
                f"{host.name} is reached through Systems Manager: its command is needed"
            )
        jump = ssm_command
    elif host.proxy_jump:
        literal = _literal_jump(host, named)
        jump = _proxy_command(paths, literal.block_name if literal else host.proxy_jump)
    elif host.proxy_command:
        jump = host.proxy_command  # the user's own, with OpenSSH's own %-tokens
    options = _reach_options(
        host, paths, str(address), host.port, host.user, host_key_alias(host, ec2), jump
    )
    if control_path_fits(paths):
        options += [
            ("ControlMaster", "auto"),
            # %C: a hash of the connection, so every host gets its own short socket name.
            ("ControlPath", _quote(str(paths.control_dir), "/%C")),
            ("ControlPersist", str(CONTROL_PERSIST_SECONDS)),
        ]
    else:
        options += [("ControlMaster", "no"), ("ControlPath", "none")]
    return [f"Host {host.name}"] + [f"    {key} {value}" for key, value in options]


def _proxy_command(paths: Paths, jump: str) -> str:
    """What ``ProxyJump JUMP`` means, spelled out: OpenSSH (9.2) builds ProxyJump's command with
    ``-F PATH`` unquoted, which breaks when the path has a space (macOS's Application Support).
    Run by a shell, with ssh's own %-tokens: the path is quoted for both."""
    config = shlex.quote(str(paths.ssh_config)).replace("%", "%%")
    return f"ssh -F {config} -W '[%h]:%p' {jump}"


def _literal_jump(host: Host, named: Collection[str]) -> LiteralJump | None:
    """The jump host of ``host`` when it is written out rather than named (see LiteralJump)."""
    if not host.proxy_jump or host.proxy_jump in named:
        return None
    return LiteralJump.parse(host.proxy_jump)


def render_jump(host: Host, jump: LiteralJump, paths: Paths) -> list[str]:
    """The Host block of a literal jump host: the same checks as every host, no multiplexing."""
    user = jump.user or host.user
    options = _reach_options(host, paths, jump.address, jump.port, user, jump.alias, None)
    return [f"Host {jump.block_name}"] + [f"    {key} {value}" for key, value in options]


def _reach_options(
    host: Host,
    paths: Paths,
    address: str,
    port: int,
    user: str | None,
    alias: str,
    proxy_command: str | None,
) -> list[tuple[str, str]]:
    """Where to connect and how to check who answers: strictly, in nbterm's own known-hosts
    file, under ``alias``; never asking (BatchMode); keepalives so a dead link is noticed."""
    options: list[tuple[str, str]] = [("HostName", address), ("Port", str(port))]
    if user:
        options.append(("User", user))
    if host.identity_file is not None:
        options += [("IdentityFile", _quote(str(host.identity_file))), ("IdentitiesOnly", "yes")]
    if host.identity_agent is not None:
        options.append(("IdentityAgent", _quote(str(host.identity_agent))))
    if host.certificate_file is not None:
        options.append(("CertificateFile", _quote(str(host.certificate_file))))
    if proxy_command:
        options.append(("ProxyCommand", proxy_command))
    options += [
        ("HostKeyAlias", alias),
        ("UserKnownHostsFile", _quote(str(paths.known_hosts))),
        ("GlobalKnownHostsFile", "/dev/null"),
        ("StrictHostKeyChecking", "yes"),
        ("UpdateHostKeys", "no"),
        ("CheckHostIP", "no"),
        ("BatchMode", "yes"),
        ("ConnectTimeout", str(host.connect_timeout)),
        ("ServerAliveInterval", str(host.keepalive_interval)),
        ("ServerAliveCountMax", str(host.keepalive_count_max)),
    ]
    return options


def render_ssh_config(
    config: LoadedConfig, paths: Paths, ec2: Mapping[str, Ec2Address] | None = None
) -> str:
    ec2 = ec2 or {}
    lines = [
        f"# Generated by nbterm from {config.path}.",
        "# nbterm rewrites this file: edit the TOML instead.",
        "# Use it with `nbterm ssh NAME`, or put this line at the top of ~/.ssh/config:",
        f"#   Include {_quote(str(paths.ssh_config))}",
    ]
    if not control_path_fits(paths):
        lines += [
            f"# Connections are not shared (no ControlMaster): {paths.control_dir} is too long",
            f"# for a socket path ({SOCKET_PATH_MAX} bytes at most, with a 58-byte name). Set",
            "# NBTERM_RUNTIME_DIR to a shorter folder to make each sync several times cheaper.",
        ]
    jumps: dict[str, list[str]] = {}
    for host in config.hosts.values():
        lines.append("")
        lines += render_host(
            host, paths, ec2.get(host.name), config.hosts, ssm_proxy_command(config)
        )
        literal = _literal_jump(host, config.hosts)
        if literal is not None:
            jumps.setdefault(literal.block_name, render_jump(host, literal, paths))
    for block in jumps.values():  # literal jump hosts, under nbterm's trust rules too
        lines.append("")
        lines += block
    return "\n".join(lines) + "\n"


def write_ssh_config(
    config: LoadedConfig, paths: Paths, ec2: Mapping[str, Ec2Address] | None = None
) -> Path:
    """Write the generated config (0600, atomically) and make the control socket directory.

    ``ec2``: addresses just looked up. They are remembered with the others (see
    :mod:`addresses`), and every host is written, not only the ones this process knows about:
    another nbterm's rsync may be reading this file for its own host right now.
    """
    ensure_private_tree(paths.runtime_dir, paths.control_dir)
    every = addresses.update(paths, dict(ec2 or {}))
    write_private(paths.ssh_config, render_ssh_config(config, paths, every))
    return paths.ssh_config


async def end_master(ssh_config: Path, host: str) -> None:
    """Close the shared OpenSSH connection (ControlMaster) of ``host``, if one is open."""
    with contextlib.suppress(OSError, TimeoutError):
        proc = await asyncio.create_subprocess_exec(
            "ssh", "-F", str(ssh_config), "-O", "exit", host,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(proc.wait(), 10)
