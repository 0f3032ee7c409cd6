"""Helpers for tests of sync against the loopback sshd: notebooks, a remote shell through
nbterm's generated ssh config, and an event recorder."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from nbterm.services.sync.events import SyncEvent
from tests.harness.openssh import end_master


def notebook(text: str = "", pad: int = 0) -> str:
    return json.dumps(
        {
            "cells": [{"cell_type": "markdown", "metadata": {}, "source": text + "x" * pad}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


class Remote:
    """Shell access to the test sshd through the generated config (its master ended after)."""

    def __init__(self, ssh_config: Path, folder: str) -> None:
        self.ssh_config = ssh_config
        self.folder = folder

    def sh(self, command: str, data: bytes | None = None, timeout: float = 60) -> str:
        done = subprocess.run(
            ["ssh", "-F", str(self.ssh_config), "box", command],
            input=data, capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def write(self, rel: str, text: str | bytes) -> None:
        path = f"{self.folder}/{rel}"
        parent = path.rsplit("/", 1)[0]
        data = text.encode() if isinstance(text, str) else text
        self.sh(f"mkdir -p {shlex.quote(parent)} && cat > {shlex.quote(path)}", data)

    def end_master(self) -> None:
        end_master(self.ssh_config, "box")


class Recorder:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def __call__(self, event: SyncEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[SyncEvent]:
        return [event for event in self.events if isinstance(event, kind)]
