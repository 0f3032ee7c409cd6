"""`nbterm --demo`'s world: moto, the in-process SSH server, Jupyter; all gone after close()."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.demo.world import WARN_AFTER, DemoWorld
from nbterm.locations import resolve_paths
from nbterm.screens.main import REFRESH_SECONDS
from nbterm.services.cloud import lifecycle
from nbterm.services.cloud.ec2 import Ec2
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.pricing import Rate, price_per_hour
from nbterm.services.cloud.spending import Ledger
from nbterm.services.host.session import Cloud, HostSession
from nbterm.services.host.up import guard_settings
from nbterm.services.journal import Journal
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


def the_budget_warns_within_a_minute(world: DemoWorld, ec2: Ec2, gpu: Instance) -> None:
    """The demo's day: below 80% of the budget at the start, past it ``WARN_AFTER`` seconds
    after the gpu instance started, so the cockpit's next refresh warns within a minute."""
    config = load_config(world.config_file)
    paths = resolve_paths(world.config_file)
    price = price_per_hour(ec2, config.aws, gpu, paths.state_dir / "prices.json")
    assert price == 0.4213  # the demo's own spot price, as the cockpit reads it
    assert config.aws.daily_budget == 5.0
    assert gpu.launch_time is not None
    ledger = Ledger(paths.state_dir / "spend.json")
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    started = gpu.launch_time
    before = ledger.observe({"gpu": gpu}, {"gpu": Rate.flat(price)}, budget=5.0,
                            now=started + dt.timedelta(seconds=WARN_AFTER - 5))  # fmt: skip
    # by hand: 4.00 - 0.4213 * 20 / 3600 = 3.99766 seeded, + 0.4213 * 15 / 3600 = 3.99941
    assert round(before.today, 4) == 3.9994
    assert before.verdict == "ok"
    assert before.words == "today's spending $3.99 is 79% of the daily budget ($5.00)"
    after = ledger.observe({"gpu": gpu}, {"gpu": Rate.flat(price)}, budget=5.0,
                           now=started + dt.timedelta(seconds=WARN_AFTER + 1))  # fmt: skip
    assert after.verdict == "warn"
    assert after.words == "today's spending $4.00 is 80% of the daily budget ($5.00)"
    # the crossing comes before the cockpit's second look (it looks at once, then every 30 s)
    assert WARN_AFTER + REFRESH_SECONDS <= 60
    said = [entry.text for entry in Journal(paths).entries("gpu")]
    assert len(said) == 1
    assert said == [
        "demo: a seeded earlier run today (not charged) cost $3.9977: the daily budget warns "
        "within a minute"
    ]


async def test_the_demo_world_serves_the_real_services_and_cleans_up() -> None:
    world = DemoWorld()
    await asyncio.to_thread(world.start)
    jupyter_pid = guard_pid = 0
    try:
        config = load_config(world.config_file)
        paths = resolve_paths(world.config_file)
        ec2 = Ec2(config.aws)
        gpu = ec2.find(config.hosts["gpu"])
        cpu = ec2.find(config.hosts["cpu"])
        assert gpu is not None
        assert cpu is not None
        assert (gpu.state, gpu.spot, cpu.state) == ("running", True, "stopped")
        await asyncio.to_thread(the_budget_warns_within_a_minute, world, ec2, gpu)
        ready = await asyncio.to_thread(
            lifecycle.bring_up, ec2, config, paths, config.hosts["gpu"], note=lambda m: None,
            delay=0.1,
        )  # fmt: skip
        guard = guard_settings(config.hosts["gpu"], config.templates["gpu"])
        assert guard is not None  # the demo's gpu template has idle_stop_minutes
        # every demo "instance" is this machine: its guard must never power it off
        assert "sudo" not in guard.power_off and "nbterm.demo.power_off" in guard.power_off
        session = HostSession(config, "gpu", paths, verifier=trust_all, on_event=lambda e: None,
                              reach=ready, cloud=Cloud(guard=guard))  # fmt: skip
        result = await session.up()
        guard_state = world.home / ".nbterm" / "guard" / "state.json"
        deadline = time.monotonic() + 10
        while not guard_state.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        guard_pid = int(json.loads(guard_state.read_text())["pid"])
        assert alive(guard_pid)
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
        powered = await asyncio.to_thread(  # as the guard runs it: by /bin/sh
            subprocess.run, ["/bin/sh", "-c", guard.power_off], capture_output=True, check=False
        )
        assert powered.returncode == 0
        stopped = await asyncio.to_thread(ec2.wait_for, gpu.id, "stopped", delay=0.1)
        assert stopped.state == "stopped"  # the demo's "power-off" stopped the demo instance
    finally:
        root = world.root
        await asyncio.to_thread(world.close)
    assert not root.exists()
    assert jupyter_pid
    deadline = time.monotonic() + 10
    while alive(jupyter_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(jupyter_pid)
    while alive(guard_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(guard_pid)  # the guard it started ended with it
    assert await asyncio.to_thread(started_under, root) == []  # no watcher or loop left behind
    assert os.environ["NBTERM_STATE_DIR"].startswith(str(root))  # the demo never touched yours
