"""JSON the remote writes, nested to a depth bomb: the guard's state.json and a Jupyter runtime
file. ``json.loads`` raises ``RecursionError`` on them, which no caller caught: the lease task
died silently (the guard would then power off without the laptop's warning and final sync),
and ``up``/``stop-jupyter`` crashed until someone deleted the file.

Invariants: while a bomb is written into state.json every 50 ms, the attached session's lease
stays younger than three renewals (sampled 40 times over 8 s) and nothing ends by an error; a
bomb in the runtime folder is not taken for a server, and a new one starts and stops beside it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud import guard
from nbterm.services.cloud.guard import GUARD_DIR
from nbterm.services.host.session import Cloud, HostSession, Timings
from nbterm.services.remote import jupyter
from nbterm.services.remote.events import GuardReport, Notice, RemoteEvent
from nbterm.services.remote.ssh import Link, run
from nbterm.services.sync.events import SyncEvent
from tests.harness.guard import guarded, settings_for
from tests.harness.remote import own_runtime, remote_config_text, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd

BOMB_LEVELS = 5_000  # 10 kB: json.loads raises RecursionError at about 1000


async def lease_age(link: Link, sshd: SshServer) -> float:
    program = (
        "import os, time; "
        f"print(time.time() - os.stat(os.path.expanduser('~/{GUARD_DIR}/lease')).st_mtime)"
    )
    _s, out, _e = await run(link, f'{sshd.remote_python} -c "{program}"')
    return float(out)


async def test_a_depth_bomb_in_the_guards_state_never_stops_the_lease(
    sshd: SshServer, paths: Paths, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    marker = f"guard-marker-{uuid.uuid4().hex[:8]}"
    config = load_config(write_config(remote_config_text(sshd, local_port=30559)))
    events: list[RemoteEvent | SyncEvent] = []
    every = 0.3
    settings = settings_for(config.hosts["box"].jupyter, marker, idle_minutes=60.0,
                            lease_minutes=1.0)  # fmt: skip
    session = HostSession(
        config, "box", paths, verifier=trust_all, on_event=events.append,
        cloud=Cloud(guard=settings), timings=Timings(lease_every=every),
    )  # fmt: skip
    bomb = "[" * BOMB_LEVELS + "]" * BOMB_LEVELS
    async with (
        own_runtime(sshd, tmp_path, "nbterm-guard-bomb") as (link, _settings, _folder),
        guarded(link, marker),
    ):
        try:
            await session.up()
            _s, out, _e = await run(
                link,
                f"cd {GUARD_DIR} && printf %s '{bomb}' > bomb.json && "
                "{ while :; do cp bomb.json state.json.bomb && mv state.json.bomb state.json; "
                "sleep 0.05; done >/dev/null 2>&1 & echo $!; }",
            )
            writer = int(out)
            try:
                ages = []
                started = time.monotonic()
                while time.monotonic() - started < 8:
                    ages.append(await lease_age(link, sshd))
                    await asyncio.sleep(0.2)
                state = await guard.read_state(link)
            finally:
                await run(link, f"kill {writer} 2>/dev/null; true")
                await asyncio.sleep(1.0)  # the guard writes its state again (its pid: its end)
        finally:
            await session.down(final_sync=False)
    assert len(ages) >= 20
    assert max(ages) < 3 * every + 0.5, f"the lease aged to {max(ages):.1f}s (renewed every 0.3s)"
    assert state is not None and state.armed  # the config still says armed; the state is unknown
    died = [e for e in events if isinstance(e, Notice) and "ended by an error" in e.message]
    assert died == []
    assert any(isinstance(e, GuardReport) for e in events)


async def test_a_depth_bomb_runtime_file_is_not_a_server_and_does_not_block_up(
    sshd: SshServer, tmp_path: Path
) -> None:
    async with own_runtime(sshd, tmp_path, "nbterm-json-bomb", remote_port=18994) as (
        link, settings, folder,
    ):  # fmt: skip
        bomb = '{"port": ' * 100_000 + "1" + "}" * 100_000  # 1 MB, as the 200 kB and more
        await run(link, f"mkdir -p {folder} && cat > {folder}/jpserver-1.json", input=bomb)
        assert await jupyter.discover(link, settings) is None
        try:
            server = await jupyter.ensure(link, settings, token="after-the-bomb")
            assert server.token == "after-the-bomb"
        finally:
            assert await jupyter.stop(link, settings)
        assert await jupyter.discover(link, settings) is None
