"""What keeps an instance busy besides Jupyter, measured on the instance: one rule for the guard
there and for the laptop side, which reads what the guard saw.

A training run in the remote's tmux (``python train.py``, GPU at 100%) beside an idle Jupyter is
work: judging only Jupyter's kernels would stop it. Each signal has its own threshold, and the
machine is busy if any signal says busy:

- kernels: one busy kernel (Jupyter's own ``execution_state``; the guard asks Jupyter);
- GPU: any GPU at ``gpu_busy_percent`` or more (``nvidia-smi --query-gpu ... --format=csv``;
  absent without a GPU or without the command);
- CPU: the login user's processes, the guard itself left out, using ``cpu_busy_cores`` or more
  between two checks (a CPU-bound process is one core).

The guard ships this file beside itself (``nbterm_signals.py``) and imports it: the Python
standard library only, Python 3.8 and newer, no nbterm import (a test holds that). What
``nvidia-smi`` prints is data: bounded, and a line that does not parse is left out.
"""

from __future__ import annotations

import os
import shlex
import subprocess
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
                with open(f"/proc/{pid}/stat", "rb") as file:
                    raw = file.read(4096).decode("ascii", errors="replace")
            except OSError:
                continue
            fields = raw.rpartition(")")[2].split()
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


def judge(
    busy_kernels: bool, gpu: list[dict[str, int]] | None, cpu: float | None,
    rules: dict[str, Any],
) -> tuple[bool, list[dict[str, Any]], str]:  # fmt: skip
    """Whether anything is busy, what each signal saw, and the reason in a person's words."""
    gpu_limit = float(rules.get("gpu_busy_percent") or GPU_BUSY_PERCENT)
    cpu_limit = float(rules.get("cpu_busy_cores") or CPU_BUSY_CORES)
    seen: list[dict[str, Any]] = [{"signal": "kernels", "value": "busy" if busy_kernels
                                   else "idle", "busy": busy_kernels}]  # fmt: skip
    busy_words = ["a kernel is busy"] if busy_kernels else []
    for card in gpu or []:
        busy = card["util"] >= gpu_limit
        value = f"{card['util']}% ({card['used']}/{card['total']} MiB)"
        seen.append({"signal": f"GPU {card['index']}", "value": value, "busy": busy})
        if busy:
            busy_words.append(f"GPU {card['index']} {card['util']}%")
    if cpu is not None:
        busy = cpu >= cpu_limit
        seen.append({"signal": "CPU", "value": f"{cpu:.2f} cores", "busy": busy})
        if busy:
            busy_words.append(f"CPU {cpu:.1f} cores")
    if busy_words:
        return True, seen, "busy: " + ", ".join(busy_words)
    return False, seen, "idle: " + ", ".join(f"{s['signal']} {s['value']}" for s in seen)
