"""What sampling a host's GPUs costs, on the instance and on the laptop, beside its baselines.

    .venv/bin/python -m tests.bench.bench_gpu [--seconds 20]

The loopback sshd is the "instance"; its ``nvidia-smi`` is a stand-in printing four GPUs every
second (the real one cannot run here), the same in every row, so the rows differ only in how
the samples are fetched:

- nbterm: one ``nvidia-smi --loop=1`` stream over an asyncssh connection (services/remote/gpu.py);
- OpenSSH: the same stream through ``ssh HOST nvidia-smi --loop=1`` (the baseline);
- a command per sample: a new exec channel every second (what nbterm does not do).

CPU is counted from ``/proc`` as a share of one core over the window: on the instance, every
process of the remote user (sshd's session process, the stand-in and what it runs, ended
children included); on the laptop, the process that reads the samples. Target: under 0.5% of a
core on each side for nbterm's row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.bench.common import bench_home
from tests.harness.procs import end_process
from tests.harness.sshd import SshServer, make_sshd

TICK = os.sysconf("SC_CLK_TCK")
FOUR = "0, 0, 3, 24576\n1, 97, 20011, 24576\n2, 0, 3, 24576\n3, 50, 8000, 24576\n"
STAND_IN = """#!/bin/sh
case "$*" in
  *--loop=*) exec "{python}" -c 'import os, sys, time
text = open(os.path.expanduser("~/bench-smi.csv")).read()
while True:
    sys.stdout.write(text); sys.stdout.flush(); time.sleep(1)' ;;
  *) cat "$HOME/bench-smi.csv" ;;
esac
"""
"""One long-running process for ``--loop``, as the real nvidia-smi is (a shell loop's forks
every second would cost more than the sampling it stands in for)."""


def _ticks(pid: int, children: bool = True) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    used = int(fields[11]) + int(fields[12])
    return used + (int(fields[13]) + int(fields[14]) if children else 0)


def _user_ticks(uid: int) -> int:
    """CPU ticks of every live process of ``uid``, with the children they waited for."""
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    total += _ticks(int(name))
            except OSError:
                continue
    return total


async def _window(
    seconds: float, remote_uid: int, laptop: Callable[[], int]
) -> tuple[float, float]:
    """What runs now, over ``seconds``: the instance's and the laptop's CPU (% of a core)."""
    await asyncio.sleep(1.5)  # its start-up is not its steady cost
    remote0, laptop0, started = _user_ticks(remote_uid), laptop(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    remote = (_user_ticks(remote_uid) - remote0) / TICK / elapsed * 100
    local = (laptop() - laptop0) / TICK / elapsed * 100
    return remote, local


async def run(seconds: float) -> None:
    from nbterm.config import parse_config
    from nbterm.services.remote.gpu import GpuSampler
    from nbterm.services.remote.host_keys import KnownHosts
    from nbterm.services.remote.ssh import Link, close_quietly, connect, target_for
    from nbterm.services.remote.ssh import run as remote_run
    from tests.harness.remote import remote_config_text

    home = bench_home("nbterm-bench-gpu-")  # nbterm's own files: never in sshd's folder
    sshd: SshServer = make_sshd()
    sshd.start()
    uid = pwd.getpwnam(sshd.user).pw_uid
    config = parse_config(remote_config_text(sshd), home / "c.toml")
    known = KnownHosts(home / "known_hosts")
    known.add("box", sshd.host_key_pub)
    link: Link | None = None
    rows: list[tuple[str, float, float, int]] = []
    try:
        link = await connect(target_for(config.hosts["box"], config), known)
        stand_in = STAND_IN.replace("{python}", str(sshd.remote_python))
        await remote_run(link, "cat > bench-smi && chmod +x bench-smi", input=stand_in)
        await remote_run(link, "cat > bench-smi.csv", input=FOUR)
        smi = (await remote_run(link, "echo $HOME/bench-smi"))[1].strip()
        me = os.getpid()
        as_user = {"user": sshd.user} if os.getuid() == 0 else {}  # as the remote's user
        alone = subprocess.Popen([smi, "--loop=1"], stdout=subprocess.DEVNULL,
                                 env={"HOME": str(sshd.home)}, **as_user)  # type: ignore[call-overload]  # fmt: skip
        try:
            remote, _local = await _window(seconds, uid, lambda: 0)
        finally:
            end_process(alone)
        rows.append(("the stand-in alone, no SSH", remote, 0.0, 0))

        async def the_link() -> Link:
            assert link is not None
            return link

        samples: list[object] = []
        sampler = GpuSampler("box", the_link, samples.append, command=smi, every=1)
        task = asyncio.create_task(sampler.run())
        remote, local = await _window(seconds, uid, lambda: _ticks(me, False))
        task.cancel()
        rows.append(("nbterm: one stream (asyncssh)", remote, local, len(samples)))

        proc = subprocess.Popen(["ssh", *sshd.openssh_args(), smi, "--loop=1"],
                                stdout=subprocess.PIPE)  # fmt: skip
        lines = 0

        async def drain() -> None:
            nonlocal lines
            assert proc.stdout is not None
            while await asyncio.to_thread(proc.stdout.readline):
                lines += 1

        reader = asyncio.create_task(drain())
        try:
            remote, local = await _window(seconds, uid, lambda: _ticks(proc.pid, False))
        finally:
            end_process(proc)
            reader.cancel()
        rows.append(("OpenSSH: one stream (ssh client)", remote, local, lines // 4))

        count = 0

        async def per_sample() -> None:
            nonlocal count
            while True:
                await sampler.once()
                count += 1
                await asyncio.sleep(1.0)

        each = asyncio.create_task(per_sample())
        remote, local = await _window(seconds, uid, lambda: _ticks(me, False))
        each.cancel()
        rows.append(("a command per sample (asyncssh)", remote, local, count))
    finally:
        if link is not None:
            await remote_run(link, "rm -f bench-smi bench-smi.csv; true")
        close_quietly(link)
        sshd.remove()
        shutil.rmtree(home, ignore_errors=True)
    base = rows[2]
    print(f"GPU sampling, 4 GPUs, 1 sample/s, {seconds:g} s windows; % of one core "
          f"(one clock tick is {100 / TICK / seconds:.2f}%)\n")  # fmt: skip
    print(f"{'':<34} {'instance':>9} {'laptop':>8} {'samples':>8}  {'instance/OpenSSH':>17}")
    for name, remote, local, got in rows:
        ratio = f"{remote / base[1]:.2f}x" if base[1] else "- (0 ticks)"
        print(f"{name:<34} {remote:>8.2f}% {local:>7.2f}% {got:>8}  {ratio:>17}")
    ours, alone_cpu = rows[1], rows[0][1]
    sampling = ours[1] - alone_cpu
    verdict = "met" if sampling < 0.5 and ours[2] < 0.5 else "NOT met"
    print(f"\nnbterm's sampling on the instance, the stand-in's own CPU taken off: "
          f"{sampling:.2f}%; on the laptop {ours[2]:.2f}%")  # fmt: skip
    print(f"target: under 0.5% of a core on each side: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
