"""Fixed scenes of the cockpit, for the README's screenshots and the snapshot tests.

Each scene is the real app with the example config, put into a known state by posting the same
messages the services post. What ticks (clocks, latencies, costs, uptimes) is fixed here.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import resolve_paths
from nbterm.screens.main import MainScreen
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote.events import (
    ConnectionChanged,
    ForwardHealth,
    ForwardOpened,
    Gpu,
    GpuSample,
    GuardReport,
    TunnelHealth,
    TunnelOpened,
)
from nbterm.services.sync.events import CycleDone, CycleStarted, FileReceived, Progress
from nbterm.ui.messages import HostStatus, InstancesRefreshed, ServiceEvent
from nbterm.widgets.sync_log import SyncLogPane

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)
Scene = Callable[[Pilot[None]], Awaitable[None]]


def install_example(home: Path) -> Path:
    """The example config (with offline AWS), in ``home``, its identity file present."""
    config = home / ".config" / "nbterm" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = (ROOT / "config" / "example.toml").read_text()
    text = text.replace(
        '# endpoint_url = "http://127.0.0.1:5000"', 'endpoint_url = "http://127.0.0.1:9"'
    )
    config.write_text(text)
    config.chmod(0o600)
    key = home / ".ssh" / "nbterm-ed25519"
    key.parent.mkdir(exist_ok=True, mode=0o700)
    key.write_text("placeholder, never read\n")
    key.chmod(0o600)
    return config


def make_app() -> NbtermApp:
    paths = resolve_paths()
    SyncLogPane.clock = staticmethod(lambda: "14:02:11")
    MainScreen.auto_refresh = False  # the scenes say what EC2 shows
    return NbtermApp(paths, load_config(paths.config_file))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _gpu(state: str = "running") -> Instance:
    return Instance(
        id="i-0a1b2c3d4e5f60718", name="nb-gpu", host="gpu", state=state, type="g5.xlarge",
        spot=True, az="us-east-1b", launch_time=_now() - dt.timedelta(hours=3, minutes=12),
        public_dns="ec2-198-51-100-7.compute-1.amazonaws.com", public_ip="198.51.100.7",
        private_ip="10.0.1.23",
    )  # fmt: skip


async def _settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.pause()


def _post(app: Any, *events: object) -> None:
    for event in events:
        app.screen.post_message(
            event if isinstance(event, (HostStatus, InstancesRefreshed)) else ServiceEvent(event)  # type: ignore[arg-type]
        )


def _health(state: str, latency: float | None, reconnects: int = 0) -> TunnelHealth:
    active = (_now() - dt.timedelta(minutes=12)).isoformat().replace("+00:00", "Z")
    return TunnelHealth("gpu", state, 8157, latency_ms=latency, kernels=2 if latency else None,  # type: ignore[arg-type]
                        connections=1, last_activity=active, reconnects=reconnects)  # fmt: skip


async def main_screen(pilot: Pilot[None]) -> None:
    app = pilot.app
    _post(
        app,
        HostStatus("gpu", "up", "http://127.0.0.1:8157/?token=…"),
        InstancesRefreshed({"gpu": _gpu()}, {"gpu": 0.4213}),
        TunnelOpened("gpu", 8157, 8157, 8888, url="http://127.0.0.1:8157/"),
        GuardReport(
            "gpu", True, True, 0.0, attached=True, reason="busy: GPU 0 97%", idle_limit_minutes=60.0
        ),  # in charge while nbterm is up
    )
    for util, used in ((12, 3100), (41, 9800), (86, 19500), (97, 19980), (97, 20011)):
        _post(app, GpuSample("gpu", (Gpu(0, util, used, 24564),)))  # a g5's one A10G
    _post(app, ForwardOpened("gpu", "tensorboard", 6006, 6006, 6006),
          ForwardOpened("gpu", "mlflow", 15000, 15000, 5000))  # fmt: skip
    for latency in (4.1, 3.8, 5.2, 4.4, 9.7, 4.0, 3.9, 4.2):
        _post(app, _health("up", latency),
              ForwardHealth("gpu", "tensorboard", "up", 6006, latency + 0.6, "HTTP 200"),
              ForwardHealth("gpu", "mlflow", "no server", 15000, None, "no server"))  # fmt: skip
        await pilot.pause()  # one probe at a time: bursts collapse to the newest
    rule = "gpu:~/notebooks/"
    _post(
        app,
        FileReceived(rule, "experiments/training run.ipynb", 1_284_112, False),
        FileReceived(rule, "analysis.ipynb", 48_211, True),
        CycleDone(
            rule,
            "remote change",
            ("experiments/training run.ipynb", "analysis.ipynb"),
            1_332_323,
            0.31,
            True,
        ),
    )
    await _settle(pilot)


async def reconnecting(pilot: Pilot[None]) -> None:
    await main_screen(pilot)
    _post(
        pilot.app,
        ConnectionChanged("gpu", "lost", "the SSH connection dropped"),
        ConnectionChanged("gpu", "reconnecting", attempt=3, retry_in=3.7),
        _health("reconnecting", None, reconnects=1),
        ForwardHealth("gpu", "tensorboard", "reconnecting", 6006),
        ForwardHealth("gpu", "mlflow", "reconnecting", 15000),
    )
    await _settle(pilot)


async def mid_transfer(pilot: Pilot[None]) -> None:
    await main_screen(pilot)
    rule = "gpu:~/notebooks/"
    _post(pilot.app, CycleStarted(rule, "remote change"),
          Progress(rule, 9_437_184, 42, "18.31MB/s"))  # fmt: skip
    await _settle(pilot)


async def several_gpus(pilot: Pilot[None]) -> None:
    """The lab machine up beside the instance: four GPUs in one cell, a block each."""
    await main_screen(pilot)
    _post(
        pilot.app,
        HostStatus("lab-box", "up", "http://127.0.0.1:8200/?token=…"),
        TunnelOpened("lab-box", 8200, 8200, 8888, url="http://127.0.0.1:8200/"),
    )
    for cards in (
        ((0, 3), (0, 3), (0, 3), (0, 3)),
        ((100, 70110), (99, 70020), (0, 3), (51, 8012)),
    ):
        gpus = tuple(Gpu(index, util, used, 81559) for index, (util, used) in enumerate(cards))
        _post(pilot.app, GpuSample("lab-box", gpus))  # four A100 80GB
    await _settle(pilot)


async def launch_dialog(pilot: Pilot[None]) -> None:
    await main_screen(pilot)
    await pilot.press("l")
    await _settle(pilot)


async def help_screen(pilot: Pilot[None]) -> None:
    await pilot.press("question_mark")
    await _settle(pilot)


SCENES: dict[str, Scene] = {
    "main": main_screen,
    "launch": launch_dialog,
    "reconnecting": reconnecting,
    "mid-transfer": mid_transfer,
    "help": help_screen,
    "several-gpus": several_gpus,
}


def remove(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
