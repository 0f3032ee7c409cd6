"""Turn ``~/.ssh/config`` Host entries into nbterm hosts.

The effective settings of each host come from the real OpenSSH client (``ssh -G HOST``), which
applies ``Match``, ``Include``, wildcards and defaults exactly as ssh itself would; only the list of
host names is read from the file.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PROBE_HOST = "nbterm-import-probe.invalid"


class ImportSshError(Exception):
    """``ssh -G`` could not be run, or said no."""


@dataclass(frozen=True)
class ImportResult:
    hosts: dict[str, dict[str, Any]]
    skipped: list[str] = field(default_factory=list)
    """Notes about what could not be imported, as TOML comments."""

    def to_toml(self, source: Path) -> str:
        lines = [f"# Imported from {source} by `nbterm import-ssh` (settings read with `ssh -G`)."]
        lines += [f"# {note}" for note in self.skipped]
        body = tomli_w.dumps({"hosts": self.hosts}) if self.hosts else ""
        return "\n".join(lines) + "\n\n" + body


def host_names(ssh_config: Path) -> list[str]:
    """Concrete ``Host`` names in ``ssh_config`` and the files it includes, in reading order.

    Patterns (``*``, ``?``, ``!``) are skipped: they are not hosts one can connect to.
    """
    names: list[str] = []
    for words in _directives(ssh_config, set()):
        if words[0].lower() == "host":
            for word in words[1:]:
                if not any(char in word for char in "*?!") and word not in names:
                    names.append(word)
    return names


def _directives(path: Path, seen: set[Path]) -> Iterable[list[str]]:
    """The directives of ``path``, with ``Include`` files read in place."""
    if path in seen:
        return
    seen.add(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if len(words) < 2:
            continue
        if words[0].lower() != "include":
            yield words
            continue
        for pattern in words[1:]:
            expanded = os.path.expanduser(pattern)
            if not os.path.isabs(expanded):
                expanded = str(Path("~/.ssh").expanduser() / expanded)
            for match in sorted(glob.glob(expanded)):
                yield from _directives(Path(match), seen)


def effective_settings(host: str, ssh_config: Path) -> dict[str, list[str]]:
    """What ``ssh -G`` says about ``host``: option name -> values, in order."""
    try:
        done = subprocess.run(
            ["ssh", "-G", "-F", str(ssh_config), host],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except FileNotFoundError:
        raise ImportSshError("the OpenSSH client (ssh) is not installed") from None
    except subprocess.TimeoutExpired:
        raise ImportSshError(f"`ssh -G {host}` did not answer within 15 s") from None
    if done.returncode != 0:
        raise ImportSshError(f"`ssh -G {host}` failed: {done.stderr.strip()}")
    settings: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


def import_hosts(ssh_config: Path, names: Sequence[str] = ()) -> ImportResult:
    """Build ``[hosts.NAME]`` tables for ``names`` (default: every Host in the file)."""
    wanted = list(names) or host_names(ssh_config)
    baseline = effective_settings(_PROBE_HOST, Path(os.devnull))
    default_keys = set(baseline.get("identityfile", []))
    default_user = baseline.get("user", [""])[0]
    hosts: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for name in wanted:
        if not _NAME.match(name):
            skipped.append(f"skipped {name!r}: a host name here may use letters, digits, . _ -")
            continue
        settings = effective_settings(name, ssh_config)
        table: dict[str, Any] = {"hostname": settings.get("hostname", [name])[0]}
        port = int(settings.get("port", ["22"])[0])
        if port != 22:
            table["port"] = port
        user = settings.get("user", [default_user])[0]
        if user != default_user:
            table["user"] = user
        keys = [key for key in settings.get("identityfile", []) if key not in default_keys]
        if keys:
            table["identity_file"] = keys[0]
            if len(keys) > 1:
                skipped.append(f"{name}: only the first of its identity files was kept ({keys[0]})")
        jump = settings.get("proxyjump", ["none"])[0]
        if jump != "none":
            table["proxy_jump"] = jump
        proxy = settings.get("proxycommand", ["none"])[0]
        if proxy != "none" and jump == "none":
            table["proxy_command"] = proxy
        agent = settings.get("identityagent", ["SSH_AUTH_SOCK"])[0]
        if agent not in ("SSH_AUTH_SOCK", "$SSH_AUTH_SOCK", "none"):
            table["identity_agent"] = agent
        certificates = settings.get("certificatefile", [])
        if certificates:
            table["certificate_file"] = certificates[0]
        hosts[name] = table
    return ImportResult(hosts, skipped)
