"""What keeps an instance busy, measured on the instance: one rule for the guard there and for
the laptop side, which reads what the guard saw.

A training run in the remote's tmux (``python train.py``, GPU at 100%) beside an idle Jupyter is
work: judging only Jupyter's kernels would stop it. Each signal has its own threshold. Two kinds:

- *levels*, busy now or not: one busy kernel (Jupyter's own ``execution_state``); any GPU at
  ``gpu_busy_percent`` or more (``nvidia-smi --query-gpu ... --format=csv``; absent without a
  GPU or without the command); the login user's processes, the guard itself left out, using
  ``cpu_busy_cores`` or more between two checks (a CPU-bound process is one core);
- *activity*, a moment something last happened: Jupyter's ``last_activity``, each Jupyter
  terminal's ``last_activity``, each interactive SSH session's last keystroke (its terminal
  device's access time, as ``w`` reads it). An open session nobody types in does not keep a
  machine up for ever; typing in it does, as a kernel's activity does.

The machine is busy if any level says busy; it has been idle since the latest activity (or
since the last busy moment). nbterm's own SSH connections never hold a terminal, so every SSH
session on a terminal is a person's (found in ``/proc``: a process on a terminal whose parent
is ``sshd``, and in ``utmp``'s remote logins, since a non-root sshd writes no utmp).

The guard ships this file beside itself (``nbterm_signals.py``) and imports it: the Python
standard library only, Python 3.8 and newer, no nbterm import (a test holds that). What
``nvidia-smi``, ``/proc`` and ``utmp`` say is data: bounded, and what does not parse is left out.
"""

from __future__ import annotations

import os
import shlex
import struct
import subprocess
import time
from typing import Any

GPU_QUERY = ("--query-gpu=index,utilization.gpu,memory.used,memory.total",
             "--format=csv,noheader,nounits")  # fmt: skip
GPU_BUSY_PERCENT = 5.0
CPU_BUSY_CORES = 0.5


def parse_gpus(text: str) -> list[dict[str, int]]:
    """``nvidia-smi``'s CSV lines: index, utilisation %, memory used and total (MiB)."""
    found = []
    for line in text.splitlines()[:64]:
        parts = [part.strip() for part in line[:256].split(",")]
        if len(parts) != 4:
            continue
        try:
            index, util, used, total = (int(float(part)) for part in parts)
        except ValueError:
            continue  # "[N/A]", "[Not Supported]"...
        if 0 <= util <= 100 and 0 <= used <= total < 1 << 30:
            found.append({"index": index, "util": util, "used": used, "total": total})
    return found


def gpus(command: str = "nvidia-smi", timeout: float = 10.0) -> list[dict[str, int]] | None:
    """Each GPU as ``nvidia-smi`` reports it; None: no GPU to ask (no command, or it failed)."""
    try:
        done = subprocess.run(
            [*shlex.split(command), *GPU_QUERY], capture_output=True, timeout=timeout,
            check=False,
        )  # fmt: skip
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return parse_gpus(done.stdout[:65536].decode("utf-8", errors="replace"))


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state is the first)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read(4096).decode("ascii", errors="replace")
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


class CpuSampler:
    """CPU the login user's processes used since the last sample, in cores."""

    def __init__(self, exclude: tuple[int, ...] = ()) -> None:
        self.exclude = set(exclude)
        self.uid = os.getuid()
        self.tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self.last: dict[tuple[int, int], int] = {}
        self.last_at: float | None = None

    def _times(self) -> dict[tuple[int, int], int]:
        """(pid, start time) -> CPU ticks used so far, for this user's processes."""
        found: dict[tuple[int, int], int] = {}
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            return found
        for pid in pids:
            if pid in self.exclude:
                continue
            try:
                if os.stat(f"/proc/{pid}").st_uid != self.uid:
                    continue
            except OSError:
                continue
            fields = _proc_stat(pid) or []
            try:  # utime, stime are fields 14 and 15, starttime 22 (after the name: 12, 13, 20)
                found[(pid, int(fields[19]))] = int(fields[11]) + int(fields[12])
            except (IndexError, ValueError):
                continue
        return found

    def sample(self, now: float) -> float | None:
        """Cores used since the last call (None: the first call, nothing to compare yet)."""
        times = self._times()
        used = None
        if self.last_at is not None and now > self.last_at:
            ticks = sum(total - self.last.get(key, 0) for key, total in times.items())
            used = max(0.0, ticks / self.tick / (now - self.last_at))
        self.last, self.last_at = times, now
        return used


UTMP_RECORD = struct.Struct("=hxxi32s4s32s256shhiii4i20s")
"""glibc's ``struct utmp`` on Linux (384 bytes on x86_64 and aarch64)."""
USER_PROCESS = 7


def _input_at(device: str) -> float | None:
    """When a terminal device was last read from (its access time: the last keystroke)."""
    try:
        return os.stat(device).st_atime
    except OSError:
        return None


def _utmp_terminals(user: str, path: str = "/var/run/utmp") -> set[str]:
    """The terminals of this user's live remote logins in ``utmp`` (written by a root sshd)."""
    found: set[str] = set()
    try:
        with open(path, "rb") as file:
            data = file.read(UTMP_RECORD.size * 1024)
    except OSError:
        return found
    for offset in range(0, len(data) - UTMP_RECORD.size + 1, UTMP_RECORD.size):
        fields = UTMP_RECORD.unpack_from(data, offset)
        kind, pid, line, name, host = fields[0], fields[1], fields[2], fields[4], fields[5]
        line_text = line.split(b"\0")[0].decode("ascii", errors="replace")
        if kind != USER_PROCESS or not host.strip(b"\0") or "/" in line_text.replace("pts/", ""):
            continue
        if name.split(b"\0")[0].decode("utf-8", errors="replace") != user:
            continue
        try:
            os.kill(pid, 0)
        except PermissionError:
            pass  # alive, another user's process (sshd's own)
        except OSError:
            continue  # a stale record of a session that ended
        found.add(f"/dev/{line_text}")
    return found


def ssh_sessions(uid: int | None = None, utmp: str = "/var/run/utmp") -> list[dict[str, Any]]:
    """Each interactive SSH session of the login user: its terminal and last keystroke."""
    uid = os.getuid() if uid is None else uid
    terminals: set[str] = set()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        pids = []
    for pid in pids[:100000]:
        fields = _proc_stat(pid)
        try:
            if fields is None or int(fields[4]) == 0 or os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            with open(f"/proc/{int(fields[1])}/comm", "rb") as file:
                parent = file.read(64).decode("ascii", errors="replace").strip()
            device = os.readlink(f"/proc/{pid}/fd/0")
        except (OSError, IndexError, ValueError):
            continue
        if parent.startswith("sshd") and device.startswith(("/dev/pts/", "/dev/tty")):
            terminals.add(device[:64])
    try:
        import pwd

        terminals |= _utmp_terminals(pwd.getpwuid(uid).pw_name, utmp)
    except (ImportError, KeyError):
        pass
    found = []
    for device in sorted(terminals)[:16]:
        at = _input_at(device)
        if at is not None:
            found.append({"tty": device[len("/dev/") :], "input_at": at})
    return found


def _ago(seconds: float) -> str:
    minutes = max(0.0, seconds) / 60
    return "just now" if minutes < 1 else f"{minutes:.0f} min ago"


def judge(
    kernels: dict[str, Any] | None, gpu: list[dict[str, int]] | None, cpu: float | None,
    rules: dict[str, Any], *, terminals: list[dict[str, Any]] | None = None,
    sessions: list[dict[str, Any]] | None = None, now: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Whether anything is busy now, since when anything last happened, what each signal saw,
    and the reason in a person's words.

    ``kernels``: Jupyter as the guard (or the laptop) asked it, ``{"busy": bool, "count": int,
    "last": epoch or None}``, None when there is no Jupyter to ask; ``terminals``: Jupyter's
    terminals (``{"name", "last"}``), None when Jupyter has none to list; ``sessions``: as
    :func:`ssh_sessions` finds them, None when not looked for."""
    now = time.time() if now is None else now
    gpu_limit = float(rules.get("gpu_busy_percent") or GPU_BUSY_PERCENT)
    cpu_limit = float(rules.get("cpu_busy_cores") or CPU_BUSY_CORES)
    seen: list[dict[str, Any]] = []
    busy_words: list[str] = []
    active: list[float] = []

    def saw(signal: str, value: str, busy: bool, at: float | None = None) -> None:
        seen.append({"signal": signal, "value": value, "busy": busy, "at": at})
        if at is not None:
            active.append(min(at, now))

    if kernels is None:
        saw("kernels", "no Jupyter", False)
    else:
        count = int(kernels.get("count") or 0)
        busy = bool(kernels.get("busy"))
        value = "busy" if busy else (f"{count} idle" if count else "none")
        saw("kernels", value, busy, kernels.get("last"))
        if busy:
            busy_words.append("a kernel is busy")
    for card in gpu or []:
        busy = card["util"] >= gpu_limit
        saw(f"GPU {card['index']}", f"{card['util']}% ({card['used']}/{card['total']} MiB)", busy)
        if busy:
            busy_words.append(f"GPU {card['index']} {card['util']}%")
    if cpu is not None:
        busy = cpu >= cpu_limit
        saw("CPU", f"{cpu:.2f} cores", busy)
        if busy:
            busy_words.append(f"CPU {cpu:.1f} cores")
    if terminals is not None:
        for term in terminals[:16]:
            last = term.get("last")
            value = "open" if last is None else f"used {_ago(now - last)}"
            saw(f"terminal {str(term.get('name'))[:16]}", value, False, last)
        if not terminals:
            saw("terminals", "none", False)
    if sessions is not None:
        for session in sessions[:16]:
            at = session["input_at"]
            saw(f"SSH {session['tty']}", f"typed in {_ago(now - at)}", False, at)
        if not sessions:
            saw("SSH", "no session", False)
    busy = bool(busy_words)
    active_at = now if busy else max(active, default=None)
    if busy:
        reason = "busy: " + ", ".join(busy_words)
    else:
        reason = "idle: " + ", ".join(
            f"{s['signal']} {s['value']}" if s["signal"] != "SSH" else "no SSH session"
            for s in seen
        )
    return {"busy": busy, "active_at": active_at, "signals": seen, "reason": reason}
