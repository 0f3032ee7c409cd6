"""The tunnel's fast lane: an OpenSSH master of the forwarder's own, which moves the bytes.

Python moving every forwarded packet through asyncssh costs about twice OpenSSH's time for a
small round trip (measured: 200 bytes, 300 us against 150 us). So the forwarder keeps nbterm's
listening socket and its own asyncssh link (the link's state and words, and the way the tunnel
heals), but hands each accepted connection to this master (:mod:`mux`), whose C code then
reads, encrypts and writes it as ``ssh -L`` does. While the lane is not up (starting, or its
ssh ended and waits to start again) connections go through the asyncssh link as before.

The master is started with nbterm's generated ssh config, so it checks the host key strictly
against nbterm's own file, never asks, and reaches the host the way rsync does (proxy command,
jump host, Systems Manager). Its control socket is its own (not the one rsync shares; ``nbterm
sync`` ends that one), in nbterm's 0700 control folder. Its standard input is a pipe from the
forwarder and its command reads it: if the forwarder dies, even by SIGKILL, the master's
session ends and the master with it, so no SSH connection outlives the process that owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbterm.locations import Paths
from nbterm.services.remote import mux
from nbterm.services.remote.output import keep_tail, last_lines
from nbterm.services.remote.ssh_config import control_path_fits

START_WAIT = 30.0
"""How long a starting master may take to answer on its control socket."""
RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Waits before starting a master again, one per short-lived master in a row: a master that
the remote keeps refusing is not dialled more than about every 15 s."""
STEADY = 30.0
"""A master that lived this long starts again after the first delay, not the next one."""
WORDS_LIMIT = 2048


@dataclass(frozen=True)
class LaneSpec:
    """What a forwarder needs to start a lane for one host."""

    ssh_config: Path
    alias: str
    control_dir: Path

    def to_json(self) -> dict[str, str]:
        return {
            "ssh_config": str(self.ssh_config),
            "alias": self.alias,
            "control_dir": str(self.control_dir),
        }

    @classmethod
    def of(cls, paths: Paths, name: str) -> LaneSpec | None:
        """Host ``name`` in nbterm's generated ssh config; None where a control socket's path
        would be too long for OpenSSH (no connection is shared then: the link serves alone)."""
        if not control_path_fits(paths):
            return None
        return cls(paths.ssh_config, name, paths.control_dir)

    @classmethod
    def from_json(cls, data: dict[str, str]) -> LaneSpec:
        return cls(Path(data["ssh_config"]), str(data["alias"]), Path(data["control_dir"]))


def _option_path(path: str) -> str:
    """A path as an ``-o`` value: quoted (ssh splits option values on spaces), ``%`` escaped
    (ssh expands tokens in ControlPath)."""
    return '"' + path.replace("%", "%%") + '"'


class Lane:
    """One OpenSSH master for one forwarder, started again when it ends.

    :attr:`control_path` is set only while the master answers; ``on_change(up, words)`` hears
    each change (``words``: why it is down, shown safe)."""

    def __init__(
        self, spec: LaneSpec, on_change: Callable[[bool, str], None] = lambda up, words: None
    ) -> None:
        self.spec = spec
        self.on_change = on_change
        self.path = str(spec.control_dir / f"f{os.getpid()}")
        self.control_path: str | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lane:{self.spec.alias}")

    def argv(self) -> list[str]:
        return [
            "ssh", "-F", str(self.spec.ssh_config), "-T",
            "-o", "ControlMaster=yes", "-o", f"ControlPath={_option_path(self.path)}",
            "-o", "ControlPersist=no", "-o", "LogLevel=ERROR",
            self.spec.alias, "exec cat >/dev/null",  # ends when the forwarder does (see above)
        ]  # fmt: skip

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            started = asyncio.get_running_loop().time()
            words = await self._one_master()
            if self._closing:
                return
            lived = asyncio.get_running_loop().time() - started
            failures = 0 if lived >= STEADY else failures + 1
            delay = RESTART_DELAYS[min(max(failures - 1, 0), len(RESTART_DELAYS) - 1)]
            self.on_change(False, words)
            await asyncio.sleep(delay)

    async def _one_master(self) -> str:
        """Run one master until it ends; what it said (or why it was not used)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a socket of a process with our pid, long gone
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its proxy command too is ended with it (killpg)
            )
        except OSError as exc:
            return f"ssh could not run: {exc}"
        assert self.process.stderr is not None
        tail = bytearray()
        reader = asyncio.create_task(keep_tail(self.process.stderr, tail, WORDS_LIMIT))
        try:
            if await self._answers(self.process):
                self.control_path = self.path
                self.on_change(True, "")
                await self.process.wait()
            elif self.process.returncode is None:  # ended below
                return f"ssh did not connect within {START_WAIT:g} s"
        finally:
            self.control_path = None
            await self._end(self.process)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader, 1)
            reader.cancel()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        code = self.process.returncode
        return last_lines(bytes(tail)) or (
            f"ssh was killed by signal {-code}"
            if code is not None and code < 0
            else f"ssh exited with status {code}"
        )

    async def _answers(self, process: asyncio.subprocess.Process) -> bool:
        """Wait until the master answers on its socket (or ends, or takes too long)."""
        deadline = asyncio.get_running_loop().time() + START_WAIT
        while process.returncode is None and asyncio.get_running_loop().time() < deadline:
            if await mux.answers(self.path):
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), 0.05)
        return False

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None and process.stdin is not None:
            process.stdin.close()  # its command ends, and the master with it
        try:
            await asyncio.wait_for(process.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)  # (start_new_session: its own group)
            try:
                await asyncio.wait_for(process.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()

    def recycle(self) -> None:
        """End the current master (the host moved): the next one reads the rewritten config."""
        self.control_path = None
        process = self.process
        if process is not None and process.returncode is None and process.stdin is not None:
            process.stdin.close()

    async def close(self) -> None:
        self._closing = True
        self.control_path = None
        if self.process is not None:
            await self._end(self.process)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
