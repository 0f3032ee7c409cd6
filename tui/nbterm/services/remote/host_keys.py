"""nbterm's own known-hosts file, and the question asked before a new key is trusted.

The file is in OpenSSH format, so the OpenSSH client used by rsync reads the same trust through the
generated ssh config. Keys are stored under the host's alias (the instance id for EC2, the host's
nbterm name otherwise), never under an address that a cloud may hand to someone else tomorrow.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbterm.files import write_private


@dataclass(frozen=True)
class HostKeyQuestion:
    """What a verifier is asked: should this key be trusted for this host?"""

    host: str
    """The host's nbterm name."""
    alias: str
    """The name the key will be stored under."""
    address: str
    port: int
    key_type: str
    """For example ``ssh-ed25519``."""
    sha256: str
    """``SHA256:...``, as OpenSSH prints it."""
    md5: str
    """``MD5:aa:bb:...``, the old form some consoles still print."""
    public_key: str
    """The key in OpenSSH format (``ssh-ed25519 AAAA...``)."""


Verifier = Callable[[HostKeyQuestion], Awaitable[bool]]
"""Answers a :class:`HostKeyQuestion`: True to trust and store the key, False to refuse.
It may raise :class:`HostKeyVerificationError` to refuse with its own (loud) message."""


class HostKeyVerificationError(Exception):
    """A verifier's refusal with an explanation (for example: not the key the console printed)."""


def fingerprint_question(
    host: str, alias: str, address: str, port: int, key: Any
) -> HostKeyQuestion:
    public = key.export_public_key("openssh").decode().split()
    return HostKeyQuestion(
        host=host,
        alias=alias,
        address=address,
        port=port,
        key_type=public[0],
        sha256=key.get_fingerprint("sha256"),
        md5=key.get_fingerprint("md5"),
        public_key=f"{public[0]} {public[1]}",
    )


def accept_fingerprint(fingerprint: str) -> Verifier:
    """A verifier that trusts exactly the key with this SHA256 (or MD5) fingerprint."""
    wanted = fingerprint.strip()
    if not wanted.startswith(("SHA256:", "MD5:")):
        wanted = "SHA256:" + wanted

    async def verify(question: HostKeyQuestion) -> bool:
        return wanted in (question.sha256, question.md5)

    return verify


class KnownHosts:
    """Reads and writes nbterm's known-hosts file (atomically, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text().splitlines()
        except FileNotFoundError:
            return []

    @staticmethod
    def _entry(line: str, alias: str) -> list[str] | None:
        """The words of ``line`` if it holds a key for ``alias``."""
        words = line.split()
        if len(words) >= 3 and not line.startswith("#") and alias in words[0].split(","):
            return words
        return None

    def keys_for(self, alias: str) -> list[str]:
        """The trusted keys for ``alias``, as ``type base64`` strings."""
        entries = (self._entry(line, alias) for line in self._lines())
        return [f"{words[1]} {words[2]}" for words in entries if words]

    def knows(self, alias: str) -> bool:
        return bool(self.keys_for(alias))

    def add(self, alias: str, public_key: str) -> None:
        if public_key in self.keys_for(alias):
            return
        lines = [*self._lines(), f"{alias} {public_key}"]
        write_private(self.path, "\n".join(lines) + "\n")

    def forget(self, alias: str) -> int:
        """Remove every key stored for ``alias``; return how many there were."""
        kept, removed = [], 0
        for line in self._lines():
            if self._entry(line, alias):
                removed += 1
            else:
                kept.append(line)
        if removed:
            write_private(self.path, "\n".join(kept) + ("\n" if kept else ""))
        return removed

    def fingerprints_for(self, alias: str) -> list[str]:
        import asyncssh  # not at import time: the cockpit starts without it

        prints = []
        for entry in self.keys_for(alias):
            try:
                key = asyncssh.import_public_key(entry)
            except (asyncssh.KeyImportError, ValueError):
                continue
            prints.append(f"{entry.split()[0]} {key.get_fingerprint('sha256')}")
        return prints

    def exists(self) -> bool:
        return os.path.exists(self.path)
