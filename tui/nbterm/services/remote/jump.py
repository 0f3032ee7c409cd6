"""Jump hosts written out (``[user@]host[:port]``) rather than named: one description for
asyncssh and OpenSSH alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiteralJump:
    """A jump host written as ``[user@]host[:port]`` rather than as one of the config's hosts.

    It gets the same trust rules as every host: its key lives in nbterm's known-hosts file under
    an alias of its own (``jump.HOST.PORT``, never the bare address a recycled IP could inherit),
    and the generated ssh config gives it a Host block (``nbterm-jump.HOST.PORT``) so OpenSSH
    checks it there too, instead of in ``~/.ssh/known_hosts`` with its default prompt.
    """

    user: str | None
    address: str
    port: int

    @classmethod
    def parse(cls, spec: str) -> LiteralJump:
        user, _, rest = spec.rpartition("@")
        address, _, port = rest.partition(":")
        return cls(user or None, address, int(port) if port else 22)

    @property
    def alias(self) -> str:
        return f"jump.{self.address}.{self.port}"

    @property
    def block_name(self) -> str:
        return f"nbterm-{self.alias}"
