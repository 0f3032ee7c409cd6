"""A real tmux server of the test's own (its own socket), read as a person reads a screen."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path


class TmuxScreen:
    """One tmux server on a private socket, with one session running ``command``."""

    def __init__(self, command: str, *, width: int = 120, height: int = 36) -> None:
        self.socket = f"nbterm-test-{uuid.uuid4().hex[:10]}"
        self.width, self.height = width, height
        self.command = command
        self.server_pid: int | None = None
        self.socket_path: Path | None = None

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def start(self) -> None:
        done = self.tmux(
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            # the pane's size is the screen's: a COLUMNS or LINES the tests inherited is not
            f"unset COLUMNS LINES; {self.command}",
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux did not start: {done.stderr}")
        pid, _, socket_path = (
            self.tmux("display-message", "-p", "#{pid} #{socket_path}")
            .stdout.strip()
            .partition(" ")
        )
        self.server_pid = int(pid) if pid.isdigit() else None
        self.socket_path = Path(socket_path) if socket_path else None

    def capture(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "main").stdout

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def wait_for(self, *texts: str, timeout: float = 15.0) -> str:
        """Wait until all of ``texts`` are on the screen at once (a frame can be half drawn)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if all(text in screen for text in texts):
                return screen
            time.sleep(0.1)
        missing = [text for text in texts if text not in screen]
        raise AssertionError(
            f"{missing!r} did not appear within {timeout}s; the screen was:\n{screen}"
        )

    def wait_gone(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        screen = self.capture()
        while time.monotonic() < deadline:
            screen = self.capture()
            if text not in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} still on screen after {timeout}s:\n{screen}")

    def close(self) -> None:
        """End this server only: kill-server on our own socket, then its pid if still alive."""
        self.tmux("kill-server")
        if self.server_pid is not None:
            for _ in range(50):
                try:
                    os.kill(self.server_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.server_pid, signal.SIGKILL)
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)


def wait_for_file(path: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.1)
    raise AssertionError(f"{path} was not written within {timeout}s")
