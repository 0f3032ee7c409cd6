"""SSH connections with asyncssh: strict host keys from nbterm's file, keepalive, bounded waits.

``connect()`` never turns host key checking off. A host whose key nbterm has not stored yet goes
through a :data:`Verifier` first: the server's key is fetched, the verifier decides, and only an
accepted key is stored; then the real connection checks it strictly like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import shlex
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from nbterm.config import Host, LoadedConfig
from nbterm.services.remote.host_keys import (
    HostKeyQuestion,
    HostKeyVerificationError,
    KnownHosts,
    Verifier,
    fingerprint_question,
)
from nbterm.services.remote.jump import LiteralJump
from nbterm.services.remote.output import (
    ERROR_LIMIT,
    OUTPUT_LIMIT,
    read_capped,
    remote_text,
)
from nbterm.services.remote.proxy import ProxyProcess
from nbterm.untrusted_json import size_words

# Fast, modern choices first (OpenSSH's own defaults are similar); the rest stay available.
KEX_ALGS = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"]
ENCRYPTION_ALGS = [
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
]


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to reach one host, with settings resolved."""

    name: str
    address: str
    port: int
    alias: str
    """Host key alias: the instance id for EC2, the host's nbterm name otherwise."""
    user: str | None = None
    identity_file: Path | None = None
    connect_timeout: float = 15.0
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    jump: SshTarget | None = field(default=None)
    identity_agent: Path | None = None
    certificate_file: Path | None = None
    proxy_command: str | None = None
    """OpenSSH's ProxyCommand, tokens not yet replaced (see :meth:`proxy_argv`)."""

    def proxy_argv(self) -> list[str] | None:
        """The proxy command with ``%h %p %r %%`` replaced (each value quoted for the shell),
        run by ``/bin/sh`` as OpenSSH runs it."""
        if self.proxy_command is None:
            return None
        values = {"h": self.address, "p": str(self.port), "r": self.login, "%": "%"}

        def replace(match: re.Match[str]) -> str:
            letter = match.group(1)
            return "%" if letter == "%" else shlex.quote(values[letter])

        return ["/bin/sh", "-c", "exec " + re.sub(r"%([hpr%])", replace, self.proxy_command)]

    @property
    def login(self) -> str:
        return self.user or getpass.getuser()

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def dead_link_bound(self) -> float:
        """How long a silent link can go unnoticed: keepalive interval x count, plus one."""
        return self.keepalive_interval * (self.keepalive_count_max + 1)


def target_for(
    host: Host, config: LoadedConfig, *, address: str | None = None, alias: str | None = None
) -> SshTarget:
    """The SSH target of a configured host; EC2 hosts pass the looked-up address and alias
    (an instance reached through Systems Manager needs only its id)."""
    if host.via_ssm and alias is not None:
        return replace(
            target_for(replace(host, connect="ssh"), config, address=alias, alias=alias),
            proxy_command=ssm_proxy_command(config),
        )
    if host.is_ec2 and (address is None or alias is None):
        raise ValueError(f"{host.name} is an EC2 host: its address and instance id are needed")
    jump = None
    if host.proxy_jump:
        jump = _jump_target(host, config)
    return SshTarget(
        name=host.name,
        address=address or str(host.hostname),
        port=host.port,
        alias=alias or host.name,
        user=host.user,
        identity_file=host.identity_file,
        connect_timeout=host.connect_timeout,
        keepalive_interval=host.keepalive_interval,
        keepalive_count_max=host.keepalive_count_max,
        jump=jump,
        identity_agent=host.identity_agent,
        certificate_file=host.certificate_file,
        proxy_command=host.proxy_command,
    )


SSM_DOCUMENT = "AWS-StartSSHSession"


def ssm_proxy_command(config: LoadedConfig) -> str:
    """The proxy command that reaches an instance's sshd through AWS Systems Manager, for both
    SSH stacks: OpenSSH's ProxyCommand and asyncssh's (``%h`` is the instance id, ``%p`` its SSH
    port). The region and profile are ``[aws]``'s (plain words, checked by the loader), else
    the AWS CLI's own environment and config."""
    words = ["aws", "ssm", "start-session", "--target", "%h", "--document-name", SSM_DOCUMENT,
             "--parameters", "portNumber=%p"]  # fmt: skip
    if config.aws.region:
        words += ["--region", config.aws.region]
    if config.aws.profile:
        words += ["--profile", config.aws.profile]
    return " ".join(words)


def _jump_target(host: Host, config: LoadedConfig) -> SshTarget:
    spec = str(host.proxy_jump)
    if spec in config.hosts:
        return target_for(config.hosts[spec], config)
    jump = LiteralJump.parse(spec)
    return SshTarget(
        name=spec,
        address=jump.address,
        port=jump.port,
        alias=jump.alias,
        user=jump.user or host.user,
        identity_file=host.identity_file,
        connect_timeout=host.connect_timeout,
        keepalive_interval=host.keepalive_interval,
        keepalive_count_max=host.keepalive_count_max,
        identity_agent=host.identity_agent,
    )


class SshError(Exception):
    """A connection failed; the message says why and what to do."""

    def __init__(self, target: SshTarget, message: str) -> None:
        self.target = target
        super().__init__(message)


class ConnectFailedError(SshError):
    """Refused, timed out, unreachable, or not resolvable: worth retrying later."""


class AuthFailedError(SshError):
    """The server refused every key offered."""


class HostKeyError(SshError):
    """The host key is changed, refused or unknown: never retried automatically."""


class HostKeyChangedError(HostKeyError):
    pass


class HostKeyRejectedError(HostKeyError):
    pass


class HostKeyUnknownError(HostKeyError):
    pass


def _options(target: SshTarget, known: KnownHosts) -> dict[str, Any]:
    options: dict[str, Any] = {
        "host": target.address,
        "port": target.port,
        "username": target.login,
        "known_hosts": str(known.path),
        "host_key_alias": target.alias,
        "config": None,  # the TOML file is the config: never read ~/.ssh/config behind it
        "connect_timeout": target.connect_timeout,
        "login_timeout": target.connect_timeout,
        "keepalive_interval": target.keepalive_interval,
        "keepalive_count_max": target.keepalive_count_max,
        "kex_algs": KEX_ALGS,
        "encryption_algs": ENCRYPTION_ALGS,
        # the server's auth banner (its /etc/issue.net) may be Latin-1: asyncssh's strict
        # decoding refused the whole connection for it (OpenSSH's client shows it). nbterm never
        # shows the banner; a byte that is not UTF-8 stays a byte.
        "utf8_decode_errors": "surrogateescape",
    }
    if target.identity_file is not None:
        # OpenSSH's IdentityFile + IdentitiesOnly: this key and no other, from the file if it
        # has no passphrase, else the agent's copy of it (matched by its public half).
        key = str(target.identity_file)
        options["client_keys"] = [key]
        options["ignore_encrypted"] = True
        public = Path(key + ".pub")
        if public.is_file():
            options["agent_identities"] = [str(public)]
        else:
            options["agent_path"] = None  # nothing to match the agent's keys against
    if target.identity_agent is not None and options.get("agent_path", ()) is not None:
        options["agent_path"] = str(target.identity_agent)
    if target.certificate_file is not None:
        options["client_certs"] = [str(target.certificate_file)]
    return options


def _keys_tried(target: SshTarget) -> str:
    if target.identity_file is not None:
        return str(target.identity_file)
    return "ssh-agent and the default keys in ~/.ssh"


def _needs_passphrase(key: Path) -> bool:
    try:
        asyncssh.read_private_key(str(key))
    except asyncssh.KeyImportError as exc:
        return "passphrase" in str(exc).lower()
    except OSError:
        return False
    return False


def _locked_key(target: SshTarget) -> str | None:
    """Why the configured key could not be offered, when it is passphrase-protected."""
    key = target.identity_file
    if key is None or not _needs_passphrase(key):
        return None
    agent = "ssh-agent does not hold it" if os.environ.get("SSH_AUTH_SOCK") else "no ssh-agent runs"
    quoted, public = shlex.quote(str(key)), shlex.quote(f"{key}.pub")
    if not Path(f"{key}.pub").is_file():
        return (
            f"{key} is protected by a passphrase, and its public half ({key}.pub) is missing, "
            f"so ssh-agent's copy cannot be matched to it: write it with "
            f"`ssh-keygen -y -f {quoted} > {public}`, then `ssh-add {quoted}`"
        )
    return f"{key} is protected by a passphrase and {agent}: load it with `ssh-add {quoted}`"


async def _explain_proxied(
    target: SshTarget, exc: BaseException, proxy: ProxyProcess | None
) -> SshError:
    """A failed connect through a proxy command: its own words say why better than the closed
    stream it leaves behind ("Connection lost"); a proxy that still runs did not fail, and
    what it printed is only added."""
    if proxy is None or isinstance(exc, SshError):
        return _explain(target, exc)
    ended, said = await proxy.last_words()
    if not said:
        return _explain(target, exc)
    program = (target.proxy_command or "").split(" ", 1)[0]
    if ended and not isinstance(exc, asyncssh.PermissionDenied):
        return ConnectFailedError(
            target,
            f"{target.name} ({target.login}@{target.where}): its proxy command ({program}) "
            f"ended: {said}",
        )
    explained = _explain(target, exc)
    return type(explained)(target, f"{explained} (its proxy command {program} said: {said})")


def _explain(target: SshTarget, exc: BaseException) -> SshError:
    where = f"{target.name} ({target.login}@{target.where})"
    if isinstance(exc, SshError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        locked = _locked_key(target)
        if locked is not None:
            return AuthFailedError(target, f"{where}: {locked}")
        return AuthFailedError(
            target,
            f"{where} refused the login: no offered key was accepted (tried: "
            f"{_keys_tried(target)}). Check the user name and that the public key is in the "
            "remote ~/.ssh/authorized_keys.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailedError(
            target, f"{where}: connection refused (is sshd running, and is the port right?)"
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ConnectFailedError(
            target,
            f"{where}: no answer within {target.connect_timeout:g}s (host down or firewalled?)",
        )
    if isinstance(exc, socket.gaierror):
        return ConnectFailedError(
            target, f"{target.name}: cannot resolve {target.address!r} ({exc.strerror})"
        )
    if isinstance(exc, asyncssh.KeyImportError):
        return AuthFailedError(target, f"{where}: cannot use {_keys_tried(target)}: {exc}")
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectFailedError(target, f"{where}: disconnected: {exc.reason}")
    if isinstance(exc, OSError):
        return ConnectFailedError(target, f"{where}: {exc.strerror or exc}")
    return ConnectFailedError(target, f"{where}: {exc}")


async def fetch_host_key(target: SshTarget, tunnel: Any = None) -> Any:
    """The key the server presents (no login, no trust decision)."""
    kwargs: dict[str, Any] = {"config": None, "kex_algs": KEX_ALGS}
    proxy = None
    try:
        way_in, proxy = await _way_in(target, tunnel)
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(target.address, target.port, **kwargs, **way_in),
            target.connect_timeout,
        )
    except Exception as exc:
        raise await _explain_proxied(target, exc, proxy) from exc
    finally:
        if proxy is not None:
            proxy.close()
    if key is None:
        raise ConnectFailedError(target, f"{target.name}: the server presented no host key")
    return key


async def _verify_new_key(
    target: SshTarget, known: KnownHosts, verifier: Verifier | None, tunnel: Any
) -> HostKeyQuestion:
    key = await fetch_host_key(target, tunnel)
    question = fingerprint_question(target.name, target.alias, target.address, target.port, key)
    if verifier is None:
        raise HostKeyUnknownError(
            target,
            f"{target.name}: its host key is not known yet ({question.key_type} "
            f"{question.sha256}); connect interactively once (`nbterm up {target.name}`) "
            "to check and trust it",
        )
    try:
        accepted = await verifier(question)
    except HostKeyVerificationError as exc:
        raise HostKeyRejectedError(target, str(exc)) from None
    if not accepted:
        raise HostKeyRejectedError(
            target, f"{target.name}: host key {question.sha256} was not trusted; not connecting"
        )
    known.add(target.alias, question.public_key)
    return question


async def _changed_key(target: SshTarget, known: KnownHosts, tunnel: Any) -> SshError:
    expected = ", ".join(known.fingerprints_for(target.alias)) or "(none)"
    try:
        key = await fetch_host_key(target, tunnel)
        got = f"{key.export_public_key('openssh').decode().split()[0]} {key.get_fingerprint()}"
    except SshError:
        got = "(could not be read)"
    return HostKeyChangedError(
        target,
        f"{target.name}: THE HOST KEY HAS CHANGED. nbterm trusts {expected} for "
        f"{target.alias!r}, but {target.where} presented {got}. Someone may be intercepting the "
        f"connection, or the machine was rebuilt. If you know it was rebuilt, forget the old key "
        f"on purpose with `nbterm forget-host {target.name}` and connect again to check the "
        "new one.",
    )


class Link:
    """An open SSH connection and the jump connections under it, closed together."""

    def __init__(self, conn: Any, jumps: list[Any], proxy: ProxyProcess | None = None) -> None:
        self.conn = conn
        self.jumps = jumps
        self.proxy = proxy
        """The proxy command the connection runs over, ended with it."""

    def close(self) -> None:
        self.conn.close()
        for jump in self.jumps:
            jump.close()
        if self.proxy is not None:
            self.proxy.end()

    async def wait_closed(self) -> None:
        await self.conn.wait_closed()
        for jump in self.jumps:
            jump.close()
        if self.proxy is not None:
            self.proxy.end()

    @property
    def is_closed(self) -> bool:
        return bool(self.conn.is_closed())


async def connect(
    target: SshTarget,
    known: KnownHosts,
    verifier: Verifier | None = None,
    *,
    on_new_key: Any = None,
) -> Link:
    """Open a verified connection to ``target`` (through its jump host, if any)."""
    jumps: list[Any] = []
    tunnel = None
    proxy = None
    try:
        if target.jump is not None:
            jump_link = await connect(target.jump, known, verifier, on_new_key=on_new_key)
            jumps = [jump_link.conn, *jump_link.jumps]
            tunnel = jump_link.conn
        if not known.knows(target.alias):
            question = await _verify_new_key(target, known, verifier, tunnel)
            if on_new_key is not None:
                on_new_key(question)
        way_in, proxy = await _way_in(target, tunnel)
        try:
            conn = await asyncssh.connect(**_options(target, known), **way_in)
        except asyncssh.HostKeyNotVerifiable:
            raise await _changed_key(target, known, tunnel) from None
        except Exception as exc:
            raise await _explain_proxied(target, exc, proxy) from exc
    except BaseException as exc:
        for jump in jumps:
            jump.close()
        if proxy is not None:
            proxy.close()
        if isinstance(exc, Exception) and not isinstance(exc, SshError):
            raise _explain(target, exc) from exc
        raise
    return Link(conn, jumps, proxy)


async def _way_in(target: SshTarget, tunnel: Any) -> tuple[dict[str, Any], ProxyProcess | None]:
    """How asyncssh reaches the server: through the jump host's connection (``tunnel``), over
    the proxy command started here (its socket; the caller ends the proxy), or directly."""
    if tunnel is not None:
        return {"tunnel": tunnel}, None
    argv = target.proxy_argv()
    if argv is None:
        return {}, None
    try:
        proxy = await ProxyProcess.start(argv)
    except OSError as exc:
        raise ConnectFailedError(
            target, f"{target.name}: its proxy command could not start: {exc.strerror or exc}"
        ) from exc
    return {"sock": proxy.sock}, proxy


async def run(
    link: Link,
    command: str,
    timeout: float = 30.0,
    *,
    input: str | None = None,
    limit: int = OUTPUT_LIMIT,
) -> tuple[int, str, str]:
    """Run ``command`` on the remote; return exit status, stdout and stderr, bounded in time and
    in size. ``input`` goes to its standard input (the way to hand it a secret: never the
    command line).

    The output is read as bytes and decoded with ``surrogateescape`` (a byte that is not UTF-8
    stays a byte; it never ends the connection). An answer over ``limit`` bytes is not read on:
    the command is closed and the result is status 255 with the reason as stderr, said once."""

    async def go() -> tuple[int, str, str]:
        process = await link.conn.create_process(command, encoding=None)
        try:
            if input:
                process.stdin.write(input.encode())
                process.stdin.write_eof()
            errors = asyncio.ensure_future(read_capped(process.stderr, ERROR_LIMIT, drain=True))
            try:
                out = await read_capped(process.stdout, limit)
                if out.over:
                    said = (
                        f"nbterm stopped reading: the remote's answer was over {size_words(limit)}"
                    )
                    return 255, "", said
                err = await errors
            finally:
                errors.cancel()
            completed = await process.wait()
        finally:
            process.close()
        status = completed.exit_status
        return (
            int(status) if status is not None and status >= 0 else 255,
            remote_text(out.data),
            remote_text(err.data),
        )

    return await asyncio.wait_for(go(), timeout)


def close_quietly(link: Link | None) -> None:
    if link is not None:
        with contextlib.suppress(Exception):
            link.close()
