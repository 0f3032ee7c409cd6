"""The GPUs of a host, sampled over the SSH connection nbterm already has.

One long-running ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits -l N`` per host (a
single process printing every GPU each N seconds), not a command per sample: cheap on the
instance and on the laptop (tests/bench/bench_gpu.py measures both). What it prints is the
remote's data: read as bytes, in bounded lines, parsed by the same module the idle guard judges
with (:mod:`nbterm.services.cloud.signals`), a line that does not parse left out. A host with
no ``nvidia-smi`` (or no GPU) is asked once, then left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh

from nbterm.services.cloud.signals import GPU_QUERY, parse_gpus
from nbterm.services.remote.events import Gpu, GpuSample
from nbterm.services.remote.ssh import Link, run

GPU_COMMAND = "nvidia-smi"
"""What asks the GPUs, on the remote's PATH (NVIDIA's driver puts it in /usr/bin)."""
GPU_EVERY = 5
"""Seconds between samples (``nvidia-smi -l``)."""
LINE_LIMIT = 512
"""A line of ``--query-gpu`` is under 60 bytes: a longer one is not one (dropped)."""
GROUP_WAIT = 0.3
"""nvidia-smi prints every GPU of a sample at once: a pause this long ends the sample."""


def _cards(lines: list[bytes]) -> tuple[Gpu, ...]:
    text = b"\n".join(lines).decode("utf-8", errors="replace")
    return tuple(Gpu(c["index"], c["util"], c["used"], c["total"]) for c in parse_gpus(text))


async def _lines(reader: Any, on_group: Callable[[list[bytes]], None]) -> None:
    """Read ``reader`` (bytes) to its end, in lines of at most LINE_LIMIT bytes (memory stays
    bounded whatever the remote sends), handing on each group of lines printed together."""
    pending, group = b"", list[bytes]()
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), GROUP_WAIT if group else None)
        except TimeoutError:
            on_group(group)
            group = []
            continue
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        group += [line for line in complete if len(line) <= LINE_LIMIT][:64]
        if len(pending) > LINE_LIMIT:
            pending = b""  # an endless line: not one of nvidia-smi's
    if group:
        on_group(group)


class GpuSampler:
    """Samples a host's GPUs while its session lives, reporting each as a :class:`GpuSample`."""

    def __init__(
        self,
        host: str,
        link: Callable[[], Awaitable[Link]],
        on_event: Callable[[GpuSample], None],
        *,
        command: str | None = None,
        every: float = GPU_EVERY,
    ) -> None:
        self.host = host
        self.link = link
        self.on_event = on_event
        self.command = command or GPU_COMMAND
        self.every = every
        self.has_gpus: bool | None = None
        """None until asked; False: no nvidia-smi or no GPU there (the sampler ended)."""

    def _query(self, *, loop: bool) -> str:
        words = [*shlex.split(self.command), *GPU_QUERY]
        if loop:
            words.append(f"--loop={max(1, round(self.every))}")
        return "exec " + shlex.join(words)

    async def once(self) -> tuple[Gpu, ...] | None:
        """One sample (``nbterm status``); None: no GPU to ask."""
        status, out, _err = await run(await self.link(), self._query(loop=False), timeout=20)
        if status != 0:
            return None
        return _cards(out.encode("utf-8", errors="surrogateescape").splitlines()) or None

    async def run(self) -> None:
        """Sample until cancelled; a dropped connection is waited out and the stream started
        again on the new one."""
        while self.has_gpus is None:  # asked once it can be (the connection may be down)
            try:
                self.has_gpus = await self.once() is not None
            except (OSError, TimeoutError, asyncssh.Error):
                await asyncio.sleep(self.every)
        if not self.has_gpus:
            return
        while True:
            # the connection is down: its reconnect is said elsewhere, the stream starts again
            with contextlib.suppress(OSError, TimeoutError, asyncssh.Error):
                await self._stream(await self.link())
            await asyncio.sleep(self.every)

    async def _stream(self, link: Link) -> None:
        process = await link.conn.create_process(self._query(loop=True), encoding=None)
        try:

            def group(lines: list[bytes]) -> None:
                cards = _cards(lines)
                if cards:
                    self.on_event(GpuSample(self.host, cards))

            await _lines(process.stdout, group)
        finally:
            # ended with the session, not left sampling on the instance: a signal first (sshd
            # passes it on), then the channel closes (a write to it ends the real nvidia-smi)
            with contextlib.suppress(OSError, asyncssh.Error):
                process.terminate()
            process.close()
