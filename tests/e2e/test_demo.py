"""`nbterm --demo`'s world: moto, the in-process SSH server, Jupyter; all gone after close()."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.demo.world import DemoWorld
from nbterm.locations import resolve_paths
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.host_session import HostSession
from tests.harness.remote import api_status, trust_all

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def started_under(root: Path, wait: float = 10) -> list[str]:
    """Live processes whose command line names the demo's own folder (it is unique to the run)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(root) in cmdline and alive(int(proc.name)):
                found.append(f"{proc.name}: {cmdline}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


async def test_the_demo_world_serves_the_real_services_and_cleans_up() -> None:
    world = DemoWorld()
    await asyncio.to_thread(world.start)
    jupyter_pid = 0
    try:
        config = load_config(world.config_file)
        paths = resolve_paths(world.config_file)
        ec2 = Ec2(config.aws)
        gpu = ec2.find(config.hosts["gpu"])
        cpu = ec2.find(config.hosts["cpu"])
        assert gpu is not None
        assert cpu is not None
        assert (gpu.state, gpu.spot, cpu.state) == ("running", True, "stopped")
        ready = await asyncio.to_thread(
            lifecycle.bring_up, ec2, config, paths, config.hosts["gpu"], note=lambda m: None,
            delay=0.1,
        )  # fmt: skip
        session = HostSession(config, "gpu", paths, verifier=trust_all, on_event=lambda e: None,
                              reach=ready)  # fmt: skip
        result = await session.up()
        jupyter_pid = result.server.pid
        assert "kernels" in await asyncio.to_thread(
            api_status, result.local_port, result.server.token
        )
        local = world.root / "local-notebooks" / "analysis.ipynb"
        deadline = time.monotonic() + 15
        while not local.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert json.loads(local.read_text())["nbformat"] == 4
        await session.down()
    finally:
        root = world.root
        await asyncio.to_thread(world.close)
    assert not root.exists()
    assert jupyter_pid
    deadline = time.monotonic() + 10
    while alive(jupyter_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(jupyter_pid)
    assert await asyncio.to_thread(started_under, root) == []  # no watcher or loop left behind
    assert os.environ["NBTERM_STATE_DIR"].startswith(str(root))  # the demo never touched yours
