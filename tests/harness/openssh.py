"""OpenSSH client helpers for tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path


def ssh_g(config_file: Path, name: str) -> dict[str, list[str]]:
    """What the real OpenSSH client makes of ``name`` under ``config_file`` (``ssh -G``)."""
    done = subprocess.run(
        ["ssh", "-G", "-F", str(config_file), name], capture_output=True, text=True, check=True
    )
    settings: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


def end_master(ssh_config: Path, host: str) -> None:
    """End the ControlPersist master a test started: ``-O exit``, then its pid if it lingers."""
    check = subprocess.run(
        ["ssh", "-F", str(ssh_config), "-O", "check", host],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    subprocess.run(
        ["ssh", "-F", str(ssh_config), "-O", "exit", host], capture_output=True, check=False
    )
    match = re.search(r"pid=(\d+)", check.stderr)
    if not match:
        return
    pid = int(match.group(1))
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
