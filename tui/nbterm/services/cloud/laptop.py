"""Which nbterm this is, as the instances it guards know it: one id per state folder.

Two laptops (or two users of one) can attach to one instance. The guard on it keeps each one's
lease and rules apart by this id, and the words name each by its name (``user@host`` unless the
file says otherwise), so a person reads "bob@mbp is attached", never a random id. The id is
made once, at random, and kept in ``STATE/laptop.json`` (0600 in a 0700 folder).
"""

from __future__ import annotations

import getpass
import json
import re
import secrets
import socket
from dataclasses import dataclass

from nbterm.files import write_private
from nbterm.locations import Paths

_ID = re.compile(r"^[0-9a-f]{16}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


@dataclass(frozen=True)
class Laptop:
    id: str
    """16 hex digits: safe in a file name on the remote."""
    name: str
    """What a person reads (letters, digits and ``@._+-`` only, at most 64)."""


def _default_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "someone"
    return f"{user}@{socket.gethostname().split('.')[0] or 'laptop'}"


def clean_name(name: str) -> str:
    return _UNSAFE.sub("_", name)[:64] or "laptop"


def this_laptop(paths: Paths) -> Laptop:
    """This nbterm's id and name, made the first time they are asked for."""
    path = paths.state_dir / "laptop.json"
    try:
        data = json.loads(path.read_text()[:4096])
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("id"), str) and _ID.match(data["id"]):
        name = data.get("name")
        return Laptop(data["id"], clean_name(name if isinstance(name, str) else _default_name()))
    laptop = Laptop(secrets.token_hex(8), clean_name(_default_name()))
    write_private(path, json.dumps({"id": laptop.id, "name": laptop.name}) + "\n")
    return laptop
