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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

    @property
    def found(self) -> bool:
        return bool(self.sha256 or self.md5 or self.keys)

    def matches(self, question: HostKeyQuestion) -> bool:
        sha = question.sha256.rstrip("=")
        md5 = question.md5.removeprefix("MD5:").lower()
        return sha in self.sha256 or md5 in self.md5 or question.public_key in self.keys


def parse_console(output: str) -> ConsoleKeys:
    """The host keys in a console output (the last boot's blocks win if there are several)."""
    sha256: set[str] = set()
    md5: set[str] = set()
    keys: set[str] = set()
    blocks = _FINGERPRINTS.findall(output)
    if blocks:
        block = blocks[-1]
        sha256 = {f"SHA256:{m}" for m in _SHA256.findall(block)}
        md5 = {m.lower() for m in _MD5.findall(block)}
    key_blocks = _KEYS.findall(output)
    if key_blocks:
        keys = {f"{kind} {data}" for kind, data in _KEY.findall(key_blocks[-1])}
    return ConsoleKeys(frozenset(sha256), frozenset(md5), frozenset(keys))
