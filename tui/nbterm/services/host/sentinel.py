"""The laptop's watch over an instance nbterm has just started, until it is guarded or in use.

Between the request that starts an instance (StartInstances, RunInstances) and the moment its
idle guard is armed, only the nbterm that started it knows it must not run unwatched. Killed in
that window (kill -9, a closed terminal, a crash, a laptop lid), that nbterm would leave it
running, billed, with nobody to stop it. So before it starts anything, nbterm starts a
*sentinel*: a small process of its own session (no terminal's signals reach it) whose standard
input is a pipe the starter holds. The starter tells it the instance id, and *disarms* it once
the instance is guarded, in use, or already stopped again. If the pipe closes without that
word, the starter died: the sentinel stops the instance it started (the disk is kept: nothing of
the person's ran on it since, and nbterm's last stop synced it), or terminates a new one it
launched and cancels its spot request, retrying for a bounded time. EC2's ``nbterm:stopped-by``
tag says who stopped it and why, so the next nbterm says so too; ``STATE/sentinel.log`` keeps
the steps.

A pipe, not a pid: its end cannot be mistaken for another process that reused the pid, and it
works alike on Linux and macOS. A laptop that loses power takes its sentinel with it; only the
guard on the instance covers that, and it is armed as soon as SSH answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from nbterm.files import write_private
from nbterm.locations import Paths, ensure_private_dir

Action = Literal["stop", "terminate"]
PATIENCE = 900.0
"""How long the sentinel keeps trying to end an instance when EC2 cannot be reached."""
WHY = "the nbterm that started it ended before its idle guard was armed"


def sentinels_dir(paths: Paths) -> Path:
    """One file per live sentinel, named by its pid (so a test ends exactly those)."""
    return paths.state_dir / "sentinels"


class Sentinel:
    """The starter's end: tell, retarget and disarm. Every call is safe after the sentinel
    has gone (a broken pipe is said by the caller's words, never raised)."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: IO[bytes]) -> None:
        self.process = process
        self._pipe: IO[bytes] | None = pipe
        self.instance_id: str | None = None

    def _send(self, line: str) -> bool:
        if self._pipe is None:
            return False
        try:
            self._pipe.write(f"{line}\n".encode())
            self._pipe.flush()
        except (BrokenPipeError, OSError):
            self._pipe = None
            return False
        return True

    def watch(self, instance_id: str) -> None:
        """The instance is known: the sentinel ends this one (a launch says it after the
        request returns)."""
        self.instance_id = instance_id
        self._send(f"instance {instance_id}")

    def act(self, action: Action) -> None:
        """What ending it means now: a launch the up took over is stopped, not terminated."""
        self._send(f"action {action}")

    @property
    def armed(self) -> bool:
        return self._pipe is not None

    def release(self) -> None:
        """The starter gives up on ending the instance itself: the sentinel does it now (and
        keeps trying for a bounded time), as if the starter had died."""
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.close()
        self._pipe = None

    def disarm(self) -> None:
        """The instance is guarded, in use, or stopped again: the sentinel ends, doing nothing."""
        if self._send("disarm") and self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.close()
        self._pipe = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def post(paths: Paths, host: str, action: Action) -> Sentinel:
    """Start a sentinel for ``host`` before its instance is started (``stop``) or launched
    (``terminate``)."""
    ensure_private_dir(paths.state_dir)
    read, write = os.pipe()  # not inherited by anything else nbterm starts (PEP 446)
    try:
        env = {**os.environ, "NBTERM_CONFIG": str(paths.config_file),
               "NBTERM_STATE_DIR": str(paths.state_dir)}  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "nbterm.services.host.sentinel", action, host],
            stdin=read,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's ^C or hang-up that ends nbterm spares it
            env=env,
            close_fds=True,
        )
    finally:
        os.close(read)
    return Sentinel(process, os.fdopen(write, "wb"))


# --- the sentinel process ------------------------------------------------------------------------


def _log(paths: Paths) -> Callable[[str], None]:
    log = paths.state_dir / "sentinel.log"

    def note(message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n"
        if not log.exists():
            write_private(log, "")
        with log.open("a", encoding="utf-8") as handle:
            handle.write(line)

    return note


def _end(paths: Paths, name: str, action: Action, instance_id: str | None, armed_at: float,
         note: Callable[[str], None]) -> bool:  # fmt: skip
    """Stop (or terminate) what the dead starter left running; True when nothing is left."""
    from nbterm.config import load_config
    from nbterm.services.cloud import lifecycle
    from nbterm.services.cloud.ec2 import Ec2

    config = load_config(paths.config_file)
    host = config.hosts[name]
    ec2 = Ec2(config.aws)
    instance = ec2.get(instance_id) if instance_id else ec2.find(host)
    launched = instance.launch_time if instance is not None and instance_id is None else None
    if launched is not None and launched.timestamp() < armed_at - 60:
        instance = None  # older than this launch: someone else's, never ours to end
    if instance is None or instance.state in ("terminated", "shutting-down"):
        note(f"{name}: nothing of this {action} is left running")
        return True
    if action == "terminate":
        lifecycle.undo_launch(ec2, instance.id, note=note, why=WHY)
        return True
    if instance.state in ("stopped", "stopping"):
        note(f"{name}: {instance.id} is {instance.state} already")
        return True
    if instance.state == "pending":
        ec2.wait_for(instance.id, "running", timeout=600, delay=2.0)
    note(f"{name}: {WHY}: stopping {instance.id} (its disk is kept)")
    stopped = lifecycle.stop(ec2, host, note=note, paths=paths, why=WHY)
    note(f"{name}: {stopped.id} is {stopped.state}")
    return True


def _action(word: str) -> Action | None:
    return "stop" if word == "stop" else "terminate" if word == "terminate" else None


def main(argv: list[str]) -> int:
    first = _action(argv[0]) if len(argv) == 2 else None
    if first is None:
        return 2
    action: Action = first
    name = argv[1]
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    from nbterm.locations import resolve_paths

    paths = resolve_paths()
    mine = sentinels_dir(paths) / str(os.getpid())
    write_private(mine, f"{action} {name}\n")
    armed_at = time.time()
    instance_id: str | None = None
    try:
        for raw in sys.stdin.buffer:
            word, _, value = raw.decode(errors="replace").strip().partition(" ")
            if word == "disarm":
                return 0
            if word == "instance" and value.startswith("i-"):
                instance_id = value
            elif word == "action":
                action = _action(value) or action
        # the pipe closed without "disarm": the nbterm that started the instance is gone
        note = _log(paths)
        note(f"{name}: the nbterm that started {instance_id or 'an instance'} ended before "
             "it was guarded")  # fmt: skip
        deadline = time.monotonic() + PATIENCE
        delay = 5.0
        while True:
            try:
                if _end(paths, name, action, instance_id, armed_at, note):
                    return 0
            except Exception as exc:  # noqa: BLE001 - said, and tried again for a bounded time
                note(f"{name}: could not end it yet: {exc}")
            if time.monotonic() + delay > deadline:
                note(f"{name}: gave up after {PATIENCE:.0f} s: {instance_id or 'the instance'} "
                     f"may still run and cost; `nbterm stop {name}` stops it")  # fmt: skip
                return 1
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
    finally:
        with contextlib.suppress(OSError):
            mine.unlink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
