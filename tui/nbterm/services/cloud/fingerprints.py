"""Host keys from an EC2 instance's console: cloud-init prints them at first boot.

cloud-init writes two blocks to the console, each line prefixed ``ec2:``::

    -----BEGIN SSH HOST KEY FINGERPRINTS-----
    ec2: 256 SHA256:Ab3...xyz root@ip-10-0-0-5 (ED25519)
    -----END SSH HOST KEY FINGERPRINTS-----
    -----BEGIN SSH HOST KEY KEYS-----
    ec2: ssh-ed25519 AAAAC3Nza... root@ip-10-0-0-5
    -----END SSH HOST KEY KEYS-----

Older images print MD5 fingerprints (``ab:cd:...``) instead of SHA256. A key that matches is
trusted under the instance id without asking; one that does not is refused loudly.

Whoever is root on the instance can write to its console too, so the blocks are taken as one
coherent statement: every FINGERPRINTS block must list the same fingerprints, every KEYS block
the same keys (a reboot prints them again, unchanged), and the keys must have the fingerprints
printed beside them. Blocks that disagree are a conflict, and nothing is trusted from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncssh

from nbterm.services.remote.host_keys import HostKeyQuestion

_FINGERPRINTS = re.compile(
    r"-----BEGIN SSH HOST KEY FINGERPRINTS-----(.*?)-----END SSH HOST KEY FINGERPRINTS-----",
    re.DOTALL,
)
_KEYS = re.compile(
    r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----", re.DOTALL
)
_SHA256 = re.compile(r"SHA256:([A-Za-z0-9+/]+)=*")
_MD5 = re.compile(r"(?<![0-9a-fA-F:])((?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})(?![0-9a-fA-F:])")
_KEY = re.compile(r"((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+) (AAAA[A-Za-z0-9+/]+=*)")


@dataclass(frozen=True)
class ConsoleKeys:
    """What the console says about the instance's host keys."""

    sha256: frozenset[str] = field(default_factory=frozenset)
    """``SHA256:...`` fingerprints, without padding."""
    md5: frozenset[str] = field(default_factory=frozenset)
    """``aa:bb:...`` fingerprints, lower case."""
    keys: frozenset[str] = field(default_factory=frozenset)
    """Public keys, ``type base64``."""
    conflict: str = ""
    """Why the blocks cannot be trusted (they disagree), or empty."""

    @property
    def found(self) -> bool:
        return bool(self.sha256 or self.md5 or self.keys)

    def matches(self, question: HostKeyQuestion) -> bool:
        if self.conflict:
            return False
        sha = question.sha256.rstrip("=")
        md5 = question.md5.removeprefix("MD5:").lower()
        return sha in self.sha256 or md5 in self.md5 or question.public_key in self.keys


def _fingerprint_sets(block: str) -> tuple[frozenset[str], frozenset[str]]:
    sha256 = frozenset(f"SHA256:{m}" for m in _SHA256.findall(block))
    md5 = frozenset(m.lower() for m in _MD5.findall(block))
    return sha256, md5


def _key_fingerprint(key: str) -> str | None:
    try:
        return str(asyncssh.import_public_key(key).get_fingerprint("sha256")).rstrip("=")
    except (asyncssh.KeyImportError, ValueError):
        return None


def parse_console(output: str) -> ConsoleKeys:
    """The host keys in a console output, as one coherent statement (see the module's notes)."""
    fingerprint_blocks = {_fingerprint_sets(block) for block in _FINGERPRINTS.findall(output)}
    key_blocks = {
        frozenset(f"{kind} {data}" for kind, data in _KEY.findall(block))
        for block in _KEYS.findall(output)
    }
    sha256, md5 = (
        next(iter(fingerprint_blocks)) if fingerprint_blocks else (frozenset(), frozenset())
    )
    keys = next(iter(key_blocks)) if key_blocks else frozenset()
    conflict = ""
    if len(fingerprint_blocks) > 1 or len(key_blocks) > 1:
        conflict = "the console holds host key blocks that disagree with each other"
    elif sha256 and keys:
        printed = {_key_fingerprint(key) for key in keys}
        if not printed <= set(sha256):  # (cloud-init may leave some types out of a block)
            conflict = "the console's host keys do not have the fingerprints printed beside them"
    return ConsoleKeys(sha256, md5, keys, conflict)
