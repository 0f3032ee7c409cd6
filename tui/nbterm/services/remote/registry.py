"""Which tunnels are open on this machine: one small record per host in the runtime directory.

``nbterm up`` writes its record while it runs and removes it on exit; ``nbterm status`` reads them
and checks that the process is still alive. Records hold no token.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nbterm.locations import Paths
from nbterm.services.files import write_private


@dataclass(frozen=True)
class TunnelRecord:
    host: str
    pid: int
    local_port: int
    remote_port: int
    started: float

    @property
    def alive(self) -> bool:
        """The process exists and has not exited (a zombie awaiting its parent counts as gone)."""
        try:
            with open(f"/proc/{self.pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return state not in ("Z", "X")


def _dir(paths: Paths) -> Path:
    return paths.runtime_dir / "tunnels"


def record(paths: Paths, host: str, local_port: int, remote_port: int) -> Path:
    path = _dir(paths) / f"{host}.json"
    data = {
        "host": host,
        "pid": os.getpid(),
        "local_port": local_port,
        "remote_port": remote_port,
        "started": time.time(),
    }
    write_private(path, json.dumps(data))
    return path


def remove(paths: Paths, host: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_dir(paths) / f"{host}.json").unlink()


def read(paths: Paths, host: str) -> TunnelRecord | None:
    try:
        data = json.loads((_dir(paths) / f"{host}.json").read_text())
        return TunnelRecord(
            host=str(data["host"]),
            pid=int(data["pid"]),
            local_port=int(data["local_port"]),
            remote_port=int(data["remote_port"]),
            started=float(data["started"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
