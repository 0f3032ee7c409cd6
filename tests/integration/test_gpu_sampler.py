"""The GPUs of a host over the SSH connection nbterm already has, on the loopback sshd.

The GPU is a stand-in ``nvidia-smi`` (on the remote, at the path the host's guard settings
name) printing what the real one prints for ``--query-gpu`` in CSV, from a file the test
rewrites, once or every ``--loop`` seconds as the real one does. Invariants: one long-running
process streams every sample (the stand-in counts its starts), each sample holds every GPU, a
change on the remote reaches the laptop within a few samples, and a host without the command is
asked once and left alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.cli import remote_cmds
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.presenters import gpu_cell
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote import gpu
from nbterm.services.remote.events import GpuSample, RemoteEvent
from nbterm.services.remote.gpu import GpuSampler
from nbterm.services.remote.ssh import Link, run
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import guarded, settings_for
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd

ONE = "0, 97, 20011, 24576\n"
FOUR = "0, 0, 3, 24576\n1, 97, 20011, 24576\n2, 0, 3, 24576\n3, 50, 8000, 24576\n"
FOUR_LATER = "0, 88, 9000, 24576\n1, 97, 20011, 24576\n2, 0, 3, 24576\n3, 50, 8000, 24576\n"


async def _stand_in(link: Link, tag: str, csv: str) -> tuple[str, str]:
    """A stand-in nvidia-smi on the remote: its path, and the file where it counts its starts."""
    home = (await run(link, "echo $HOME"))[1].strip()
    script = (
        "#!/bin/sh\n"
        f'echo $$ >> "$HOME/smi-starts-{tag}"\n'
        'case "$*" in\n'
        f'  *--loop=*) while :; do cat "$HOME/smi-{tag}.csv"; sleep 1; done ;;\n'
        f'  *) cat "$HOME/smi-{tag}.csv" ;;\n'
        "esac\n"
    )
    await run(link, f"cat > smi-{tag} && chmod +x smi-{tag}", input=script)
    await run(link, f"cat > smi-{tag}.csv", input=csv)
    return f"{home}/smi-{tag}", f"smi-starts-{tag}"


async def _until_ended(link: Link, starts: str) -> None:
    """Every stand-in started (by the sampler, by the guard's checks) has ended on the remote.
    The stand-in's loop outlives a closed channel (the real nvidia-smi dies at its next write):
    only the sampler's own end stops it."""
    pids = (await run(link, f"cat {starts}"))[1].split()
    deadline = time.monotonic() + 10
    while True:
        alive = [pid for pid in pids if (await run(link, f"kill -0 {pid} 2>/dev/null"))[0] == 0]
        if not alive:
            return
        if time.monotonic() > deadline:
            await run(link, f"kill {' '.join(alive)} 2>/dev/null; true")
            raise AssertionError(f"the GPU stream is still running on the remote: {alive}")
        await asyncio.sleep(0.2)


async def _until(samples: list[GpuSample], test: Callable[[GpuSample], bool], wait: float) -> None:
    deadline = time.monotonic() + wait
    while not (samples and test(samples[-1])):
        assert time.monotonic() < deadline, samples[-3:]
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("gpus", [ONE, FOUR], ids=["one GPU", "four GPUs"])
async def test_one_stream_over_the_connection_carries_every_gpu(
    sshd: SshServer, tmp_path: Path, gpus: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with own_runtime(sshd, tmp_path, "nbterm-gpu") as (link, _settings, _folder):

        async def the_link() -> Link:
            return link

        try:
            command, starts = await _stand_in(link, tag, gpus)
            samples: list[GpuSample] = []
            sampler = GpuSampler("box", the_link, samples.append, command=command, every=1)
            task = asyncio.create_task(sampler.run())
            try:
                await _until(samples, lambda s: len(s.gpus) == gpus.count("\n"), 10)
                assert sampler.has_gpus is True
                if gpus == FOUR:
                    await run(link, f"cat > smi-{tag}.csv", input=FOUR_LATER)
                    await _until(samples, lambda s: s.gpus[0].util == 88, 10)
                while len(samples) < 6:
                    await asyncio.sleep(0.2)
            finally:
                task.cancel()
            await _until_ended(link, starts)  # the stream on the instance ended with it
            assert all(len(s.gpus) == gpus.count("\n") for s in samples), samples
            # one query at the start, then ONE long-running stream for every sample after it
            started = (await run(link, f"cat {starts}"))[1].split()
            assert len(started) == 2, started
        finally:
            await run(link, f"rm -f smi-{tag} smi-{tag}.csv smi-starts-{tag}; true")
    cell = gpu_cell(samples[-1].gpus, [s.gpus[0].util for s in samples])
    assert cell.endswith(("19.5/24G", "36.1/96G")), cell


async def test_a_host_without_nvidia_smi_is_asked_once(sshd: SshServer, tmp_path: Path) -> None:
    async with own_runtime(sshd, tmp_path, "nbterm-no-gpu") as (link, _settings, _folder):

        async def the_link() -> Link:
            return link

        samples: list[GpuSample] = []
        sampler = GpuSampler("box", the_link, samples.append, command="/nonexistent/smi")
        await asyncio.wait_for(sampler.run(), 20)  # it ends: nothing to sample
        assert sampler.has_gpus is False and not samples


async def test_the_session_reports_its_hosts_gpus(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    """A host's session samples its GPUs from its up to its down (the cockpit's GPU column)."""
    tag = uuid.uuid4().hex[:8]
    marker = f"guard-marker-{tag}"
    config = load_config(write_config(remote_config_text(sshd, local_port=30861)))
    async with (
        own_runtime(sshd, tmp_path, "nbterm-gpu-session") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        command, starts = await _stand_in(link, tag, FOUR)
        settings = settings_for(config.hosts["box"].jupyter, marker, idle_minutes=60.0,
                                gpu_command=command)  # fmt: skip
        events: list[RemoteEvent | SyncEvent] = []
        session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                              cloud=Cloud(guard=settings),
                              timings=Timings(gpu_every=1.0))  # fmt: skip
        try:
            try:
                await session.up()
                deadline = time.monotonic() + 15
                while not any(isinstance(e, GpuSample) for e in events):
                    assert time.monotonic() < deadline, "no GPU sample from the session"
                    await asyncio.sleep(0.1)
            finally:
                await session.down(final_sync=False)
            sample = next(e for e in events if isinstance(e, GpuSample))
            assert [card.util for card in sample.gpus] == [0, 97, 0, 50]
            # nothing samples after the down: the stream ended with the session, on both sides
            count = sum(isinstance(e, GpuSample) for e in events)
            await asyncio.sleep(2.5)
            assert sum(isinstance(e, GpuSample) for e in events) == count
            await _until_ended(link, starts)
        finally:
            await run(link, f"rm -f smi-{tag} smi-{tag}.csv smi-starts-{tag}; true")


async def test_status_prints_each_gpu_of_a_host(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path],
    trust_sshd: Callable[[str], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`nbterm status` asks the GPUs once, over the host's own connection, and prints a line
    for each of them (four here, then none once the host has no nvidia-smi)."""
    tag = uuid.uuid4().hex[:8]
    config = load_config(write_config(remote_config_text(sshd, local_port=30862)))
    trust_sshd("box")
    async with own_runtime(sshd, tmp_path, "nbterm-gpu-status") as (link, _settings, _folder):
        command, _starts = await _stand_in(link, tag, FOUR)
        try:
            monkeypatch.setattr(gpu, "GPU_COMMAND", command)
            assert await remote_cmds._status(config, paths) == 0
            printed = capsys.readouterr().out
            assert [line.strip() for line in printed.splitlines() if "GPU" in line] == [
                "GPU 0: 0% busy, 3/24576 MiB",
                "GPU 1: 97% busy, 20011/24576 MiB",
                "GPU 2: 0% busy, 3/24576 MiB",
                "GPU 3: 50% busy, 8000/24576 MiB",
            ], printed
            assert printed.startswith("box  [") and "  jupyter: " in printed
            monkeypatch.setattr(gpu, "GPU_COMMAND", f"{command}-absent")
            assert await remote_cmds._status(config, paths) == 0
            assert "GPU" not in capsys.readouterr().out
        finally:
            await run(link, f"rm -f smi-{tag} smi-{tag}.csv smi-starts-{tag}; true")
