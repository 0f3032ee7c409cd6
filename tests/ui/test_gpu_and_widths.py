"""The Instances pane's GPU column (one GPU, four, a stopped machine) and tables that keep their
key columns at 80, 120 and 200 columns instead of scrolling sideways."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.presenters import gpu_cell, level
from nbterm.screens.main import MainScreen
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote.events import Gpu, GpuSample, GuardReport, TunnelHealth
from nbterm.ui.messages import InstancesRefreshed, ServiceEvent
from tests.ui.test_app import CONFIG


def _header(table: DataTable[str]) -> list[str]:
    return [str(column.label) for column in table.columns.values()]


def _row(table: DataTable[str], _header_name: str = "") -> dict[str, str]:
    return dict(zip(_header(table), (str(c) for c in table.get_row_at(0)), strict=True))


def test_the_gpu_cell_one_gpu_and_four() -> None:
    one = (Gpu(0, 97, 20011, 24576),)
    assert gpu_cell(one, [0, 12, 50, 97, 100, 97]) == "97% ▂▅███ 19.5/24G"
    four = (Gpu(0, 0, 3, 81920), Gpu(1, 100, 70000, 81920), Gpu(2, 0, 3, 81920),
            Gpu(3, 50, 8000, 81920))  # fmt: skip
    assert gpu_cell(four) == "▁█▁▅ 38% 76.2/320G"
    assert gpu_cell(()) == ""
    assert [level(p) for p in (0, 50, 100, 250, -5)] == ["▁", "▅", "█", "█", "▁"]


@pytest.mark.parametrize("width", [80, 120, 200])
async def test_the_key_columns_fit_at_every_width(
    paths: Paths, write_config: Callable[[str], Path], width: int
) -> None:
    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        async with app.run_test(size=(width, 36)) as pilot:
            instances = app.screen.query_one("#instances-table", DataTable)
            tunnels = app.screen.query_one("#tunnels-table", DataTable)
            await pilot.pause()
            for table, keys in ((instances, {"Name", "State", "GPU", "Guard"}),
                                (tunnels, {"Host", "Local URL", "State"})):  # fmt: skip
                assert keys <= set(_header(table)), _header(table)
                assert table.virtual_size.width <= table.size.width, (width, _header(table))
            if width == 200:  # room for every column
                assert len(_header(instances)) == 12 and len(_header(tunnels)) == 8
            # a cell written while its column is hidden is there once the column is shown
            app.screen.post_message(ServiceEvent(GpuSample("gpu", (Gpu(0, 97, 20011, 24576),))))
            running = Instance("i-0123", "nb-gpu", "gpu", "running", "g5.xlarge", True,
                               "us-east-1a", None, "", "", "")  # fmt: skip
            # the run's cost at the prices it ran at (a spot run's history), not $/h x hours
            app.screen.post_message(InstancesRefreshed({"gpu": running}, {"gpu": 1.006}, None,
                                                       {"gpu": 2.1}))  # fmt: skip
            await pilot.pause()
            assert _row(instances, "GPU")["GPU"].startswith("97% ")
            await pilot.resize_terminal(200, 36)
            await pilot.pause()
            row = _row(instances, "GPU")
            assert row["Market"] == "spot" and row["$/h"] == "1.006", row
            assert row["Cost"] == "$2.10", row
            assert instances.cursor_row == 0
            # a stopped machine has no GPU figure from before
            stopped = Instance("i-0123", "nb-gpu", "gpu", "stopped", "g5.xlarge", True,
                               "us-east-1a", None, "", "", "")  # fmt: skip
            app.screen.post_message(InstancesRefreshed({"gpu": stopped}, {"gpu": None}))
            await pilot.pause()
            assert _row(instances, "GPU")["GPU"] == "—"
    finally:
        MainScreen.auto_refresh = True


async def test_a_machine_with_four_gpus_shows_each_beside_one_with_one(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    """Each host's row has its own GPUs: one block per card where there are several, the
    newest sample only (no figure of one host on another's row)."""
    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        async with app.run_test(size=(120, 36)) as pilot:
            instances = app.screen.query_one("#instances-table", DataTable)
            hosts = [str(instances.get_row_at(i)[0]) for i in range(instances.row_count)]
            one, four = hosts[0], hosts[1]
            idle = tuple(Gpu(index, 0, 3, 81920) for index in range(4))
            busy = (Gpu(0, 100, 70000, 81920), Gpu(1, 99, 70000, 81920), Gpu(2, 0, 3, 81920),
                    Gpu(3, 51, 8000, 81920))  # fmt: skip
            for sample in (GpuSample(four, idle), GpuSample(one, (Gpu(0, 12, 900, 24576),)),
                           GpuSample(four, busy)):  # fmt: skip
                app.screen.post_message(ServiceEvent(sample))
            await pilot.pause()
            column = _header(instances).index("GPU")
            cells = {str(instances.get_row_at(i)[0]): str(instances.get_row_at(i)[column])
                     for i in range(instances.row_count)}  # fmt: skip
            assert cells[four] == "██▁▅ 62% 145/320G", cells
            assert cells[one] == "12% ▂ 0.9/24G", cells
    finally:
        MainScreen.auto_refresh = True


async def test_the_idle_cell_counts_from_what_the_guard_saw_too(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    """Jupyter idle for 40 min while a person typed over SSH 2 min ago (the guard saw it): the
    Idle cell says 2 min, as the guard and the laptop's idle stop count, not Jupyter's 40."""
    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        async with app.run_test(size=(200, 36)) as pilot:
            instances = app.screen.query_one("#instances-table", DataTable)
            running = Instance("i-0123", "nb-gpu", "gpu", "running", "g5.xlarge", True,
                               "us-east-1a", None, "", "", "")  # fmt: skip
            app.screen.post_message(InstancesRefreshed({"gpu": running}, {"gpu": 1.0}))
            jupyter_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=40)
            health = TunnelHealth("gpu", "up", 8157, latency_ms=3.0, kernels=1, connections=1,
                                  last_activity=jupyter_at.isoformat())  # fmt: skip
            app.screen.post_message(ServiceEvent(health))
            await pilot.pause()
            assert _row(instances)["Idle"] == "40 min"
            report = GuardReport("gpu", True, True, 2.0, attached=True, idle_limit_minutes=60.0,
                                 reason="idle: SSH pts/1 typed in 2 min ago",
                                 active_at=time.time() - 120)  # fmt: skip
            app.screen.post_message(ServiceEvent(report))
            await pilot.pause()
            assert _row(instances)["Idle"] == "2 min"
            assert _row(instances)["Guard"] == "idle 2/60 min"
            app.screen.post_message(ServiceEvent(health))  # Jupyter's older moment: still 2
            await pilot.pause()
            assert _row(instances)["Idle"] == "2 min"
    finally:
        MainScreen.auto_refresh = True
