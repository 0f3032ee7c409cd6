"""Which tunnels are open on this machine: one small record per host in the runtime directory.

``nbterm up`` writes its record while it runs and, on exit, replaces it with the outcome of its
final sync, which ``nbterm down`` reads. ``nbterm status`` reads the records and checks that the
process is still alive. Records hold no token.

The cockpit keeps records of its own kind, in a folder of their own (``cockpit/``): ``status``
reads them to say which tunnels the cockpit holds, and nothing ever signals their pid (the
cockpit closes its tunnels itself, after their final sync).

A record names a pid that ``down``, ``stop`` and ``terminate`` signal, so it is trusted only
when it is nbterm's own file (a regular 0600 file of this user, in nbterm's private runtime
folder) and the pid still is the process that wrote it: the same start time and an
``nbterm up`` command line. A pid reused by another process after ``up`` was killed, or a forged
record, is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nbterm.files import write_private
from nbterm.locations import Paths, ensure_private_tree


def process_identity(pid: int) -> str | None:
    """Something that changes when ``pid`` is reused: its start time (and the boot), or None
    when the process does not exist."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open("/proc/sys/kernel/random/boot_id") as handle:
                boot = handle.read().strip()
        except (OSError, IndexError):
            return None
        return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks since boot
    done = subprocess.run(
        ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def _command_line(pid: int) -> str:
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    done = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class TunnelRecord:
    host: str
    pid: int
    local_port: int
    remote_port: int
    started: float
    identity: str = ""

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

    @property
    def verified(self) -> bool:
        """The pid is still the ``nbterm up`` for this host that wrote the record."""
        if not self.identity or process_identity(self.pid) != self.identity:
            return False
        words = _command_line(self.pid).split()
        return "nbterm" in " ".join(words) and "up" in words and self.host in words


def _dir(paths: Paths) -> Path:
    return paths.runtime_dir / "tunnels"


def _cockpit_dir(paths: Paths) -> Path:
    return paths.runtime_dir / "cockpit"


def _private_file(path: Path) -> bool:
    """A regular file of this user that no one else may write: one nbterm wrote."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def record(paths: Paths, host: str, local_port: int, remote_port: int) -> Path:
    ensure_private_tree(paths.runtime_dir, _dir(paths))
    path = _dir(paths) / f"{host}.json"
    write_private(path, _this_process(host, local_port, remote_port))
    (_dir(paths) / f"{host}.done.json").unlink(missing_ok=True)
    return path


def record_cockpit(paths: Paths, host: str, local_port: int, remote_port: int) -> None:
    """The cockpit holds this host's tunnel (until ``drop_cockpit``, or its process ends)."""
    ensure_private_tree(paths.runtime_dir, _cockpit_dir(paths))
    path = _cockpit_dir(paths) / f"{host}.json"
    write_private(path, _this_process(host, local_port, remote_port))


def drop_cockpit(paths: Paths, host: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_cockpit_dir(paths) / f"{host}.json").unlink()


def read_cockpit(paths: Paths, host: str) -> TunnelRecord | None:
    """The cockpit's record for this host, only while the process that wrote it still runs (a
    cockpit killed -9 leaves a record whose pid is gone, or is another process now)."""
    found = _read(_cockpit_dir(paths) / f"{host}.json")
    if found is None or not found.identity or process_identity(found.pid) != found.identity:
        return None
    return found if found.alive else None


def _this_process(host: str, local_port: int, remote_port: int) -> str:
    data = {
        "host": host,
        "pid": os.getpid(),
        "local_port": local_port,
        "remote_port": remote_port,
        "started": time.time(),
        "identity": process_identity(os.getpid()) or "",
    }
    return json.dumps(data)


def finish(paths: Paths, host: str, *, final_sync_ok: bool | None) -> None:
    """``nbterm up`` is closing: say how its final sync went (None: there was none), then drop
    the record. ``nbterm down`` waits for the record to go, then reads this."""
    with contextlib.suppress(OSError):
        outcome = {"pid": os.getpid(), "final_sync_ok": final_sync_ok}
        write_private(_dir(paths) / f"{host}.done.json", json.dumps(outcome))
    remove(paths, host)


def outcome(paths: Paths, host: str, pid: int) -> bool | None:
    """How the final sync of the ``nbterm up`` with ``pid`` went (None: unknown, or none)."""
    path = _dir(paths) / f"{host}.done.json"
    if not _private_file(path):
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pid") != pid:
        return None
    result = data.get("final_sync_ok")
    return result if isinstance(result, bool) else None


def remove(paths: Paths, host: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (_dir(paths) / f"{host}.json").unlink()


def read(paths: Paths, host: str) -> TunnelRecord | None:
    return _read(_dir(paths) / f"{host}.json")


def _read(path: Path) -> TunnelRecord | None:
    if not _private_file(path):
        return None
    try:
        data = json.loads(path.read_text())
        return TunnelRecord(
            host=str(data["host"]),
            pid=int(data["pid"]),
            local_port=int(data["local_port"]),
            remote_port=int(data["remote_port"]),
            started=float(data["started"]),
            identity=str(data.get("identity", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
