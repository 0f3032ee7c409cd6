"""Spot interruption notices and idle stop, through a live host session on loopback."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.host.down import Why
from nbterm.services.host.session import Cloud, HostSession, Outside, Timings
from nbterm.services.remote.events import IdleStopping, RemoteEvent, SpotInterruption
from nbterm.services.sync.events import CycleDone, SyncEvent
from tests.harness.remote import remote_config_text, remote_shell, sync_rule, trust_all
from tests.harness.sshd import SshServer

pytestmark = pytest.mark.sshd


class FakeImds:
    """The instance metadata service, IMDSv2, on 127.0.0.1: a token first, then the notice."""

    def __init__(self) -> None:
        self.notice: dict[str, str] | None = None
        self.untokened = 0
        imds = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"the-token")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "the-token":
                    imds.untokened += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if imds.notice is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(json.dumps(imds.notice).encode())

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def folder(sshd: SshServer) -> Iterator[str]:
    name = f"nbterm-spot-{uuid.uuid4().hex[:8]}"
    remote_shell(sshd, f"mkdir -p {name}")
    yield name
    remote_shell(sshd, f"rm -rf {name}")


@pytest.fixture
def config(
    sshd: SshServer, write_config: Callable[[str], Path], tmp_path: Path, folder: str
) -> LoadedConfig:
    text = remote_config_text(sshd, local_port=32157)
    text += sync_rule(folder, tmp_path / "local", extra="interval = 600\n")
    return load_config(write_config(text))


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_a_spot_notice_is_loud_and_syncs_at_once(config: LoadedConfig, paths: Paths) -> None:
    imds = FakeImds()
    events: list[RemoteEvent | SyncEvent] = []
    session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                          cloud=Cloud(spot=True, imds=imds.url),
                          timings=Timings(spot_every=0.2))  # fmt: skip
    try:
        await session.up()
        await asyncio.sleep(1.0)
        assert not [e for e in events if isinstance(e, SpotInterruption)]
        imds.notice = {"action": "stop", "time": "2026-11-25T12:02:00Z"}
        await wait_until(lambda: any(isinstance(e, SpotInterruption) for e in events), 5)
        notice = next(e for e in events if isinstance(e, SpotInterruption))
        assert (notice.action, notice.time) == ("stop", "2026-11-25T12:02:00Z")
        await wait_until(
            lambda: any(isinstance(e, CycleDone) and e.trigger == "final" for e in events), 10
        )
        assert imds.untokened == 0  # IMDSv2: every read carried the session token
    finally:
        await session.down(final_sync=False)
        imds.close()


async def test_idle_warns_then_syncs_then_stops(config: LoadedConfig, paths: Paths) -> None:
    events: list[RemoteEvent | SyncEvent] = []
    stopped: list[float] = []

    async def stop_instance(why: Why) -> None:
        stopped.append(time.monotonic())

    # Jupyter was last used when the session started: a limit of 0.05 min (3 s) passes soon
    session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                          cloud=Cloud(idle_stop_minutes=0.05, stop_instance=stop_instance),
                          timings=Timings(idle_check_every=0.25))  # fmt: skip
    try:
        await session.up()
        await asyncio.wait_for(session.ended.wait(), 30)
        kinds = [type(e) for e in events]
        assert IdleStopping in kinds
        assert kinds.index(IdleStopping) < max(
            i for i, e in enumerate(events) if isinstance(e, CycleDone) and e.trigger == "final"
        )
        assert stopped
        assert "idle minutes" in session.reason
    finally:
        await session.down(final_sync=False)


async def test_a_spot_interruption_seen_from_outside_also_syncs_once(
    config: LoadedConfig, paths: Paths
) -> None:
    imds = FakeImds()
    events: list[RemoteEvent | SyncEvent] = []
    answers: list[Outside | None] = [
        None, ("spot", "stopping (Server.SpotInstanceTermination: Spot instance termination)")
    ]  # fmt: skip

    async def outside() -> Outside | None:
        return answers.pop(0) if answers else ("spot", "stopping (again)")

    session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                          cloud=Cloud(spot=True, imds=imds.url, outside_check=outside),
                          timings=Timings(spot_every=0.2, outside_every=0.2))  # fmt: skip
    try:
        await session.up()
        await wait_until(lambda: any(isinstance(e, SpotInterruption) for e in events), 5)
        imds.notice = {"action": "stop", "time": "2026-11-25T12:02:00Z"}  # now inside too
        await wait_until(
            lambda: any(isinstance(e, CycleDone) and e.trigger == "final" for e in events), 10
        )
        await asyncio.sleep(0.6)
        notices = [e for e in events if isinstance(e, SpotInterruption)]
        assert len(notices) == 1
        assert "SpotInstanceTermination" in notices[0].action
    finally:
        await session.down(final_sync=False)
        imds.close()


async def test_max_hours_warns_then_syncs_then_stops_busy_or_not(
    config: LoadedConfig, paths: Paths
) -> None:
    """A spending limit, not an idleness rule: the session is in use (Jupyter answering, the
    sync running) and still stops at max_hours, after a warning and a final sync."""
    import datetime as dt

    from nbterm.services.remote.events import LimitStopping, LimitWarning

    events: list[RemoteEvent | SyncEvent] = []
    stopped: list[float] = []

    async def stop_instance(why: Why) -> None:
        stopped.append(time.monotonic())

    limit_hours = 8 / 3600  # eight seconds; the warning comes a quarter of it ahead (2 s)
    launched = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=4)
    session = HostSession(config, "box", paths, verifier=trust_all, on_event=events.append,
                          cloud=Cloud(max_hours=limit_hours, launched_at=launched,
                                      stop_instance=stop_instance))  # fmt: skip
    try:
        await session.up()
        started = time.monotonic()
        await asyncio.wait_for(session.ended.wait(), 30)
        kinds = [type(e) for e in events]
        assert LimitWarning in kinds and LimitStopping in kinds
        warning = next(e for e in events if isinstance(e, LimitWarning))
        assert warning.stop_in_minutes is not None and 0 < warning.stop_in_minutes * 60 <= 2.5
        final = [
            i for i, e in enumerate(events) if isinstance(e, CycleDone) and e.trigger == "final"
        ]
        assert final and kinds.index(LimitStopping) < final[-1] < len(events)
        assert stopped and stopped[0] - started < 8
        assert session.reason.endswith("h of uptime (max_hours)")
    finally:
        await session.down(final_sync=False)
