"""Where each EC2 host was last seen, remembered between runs in nbterm's state file.

The generated ssh config must describe every host at once: rsync for host ``a`` reads it while
``nbterm up b`` rewrites it. Each process passes the addresses it has just looked up; they are
merged into the remembered ones under a lock (so two processes never lose each other's), and
the whole set is rendered. Stopping or terminating an instance forgets its address (a stopped
instance's public address goes to someone else).

The state file is nbterm's own: TOML, 0600, written atomically. One it cannot read is started
afresh (addresses are looked up again at the next ``up``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import tomli_w

from nbterm.files import write_private
from nbterm.locations import Paths, ensure_private_dir


@dataclass(frozen=True)
class Ec2Address:
    """Where an EC2 host is right now (read afresh after every state change)."""

    instance_id: str
    address: str


@contextlib.contextmanager
def _locked(paths: Paths) -> Iterator[None]:
    ensure_private_dir(paths.state_dir)
    fd = os.open(paths.state_dir / ".state.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (closing releases the lock)


def _read(paths: Paths) -> dict[str, object]:
    try:
        with paths.state_file.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def _addresses(state: Mapping[str, object]) -> dict[str, Ec2Address]:
    table = state.get("addresses", {})
    found: dict[str, Ec2Address] = {}
    if not isinstance(table, dict):
        return found
    for name, entry in table.items():
        if isinstance(entry, dict):
            instance_id, address = entry.get("instance_id"), entry.get("address")
            if isinstance(instance_id, str) and isinstance(address, str) and address:
                found[name] = Ec2Address(instance_id, address)
    return found


def known(paths: Paths) -> dict[str, Ec2Address]:
    """Every remembered address, by host name."""
    return _addresses(_read(paths))


def update(paths: Paths, changes: Mapping[str, Ec2Address | None]) -> dict[str, Ec2Address]:
    """Remember ``changes`` (None forgets a host) and return every remembered address."""
    with _locked(paths):
        state = _read(paths)
        current = _addresses(state)
        for name, where in changes.items():
            if where is None:
                current.pop(name, None)
            else:
                current[name] = where
        if changes:
            state["addresses"] = {
                name: {"instance_id": where.instance_id, "address": where.address}
                for name, where in sorted(current.items())
            }
            write_private(paths.state_file, tomli_w.dumps(state))
        return current
