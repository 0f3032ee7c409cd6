"""The Instances pane's GPU column (one GPU, four, a stopped machine) and tables that keep their
key columns at 80, 120 and 200 columns instead of scrolling sideways."""

from __future__ import annotations

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
from nbterm.services.remote.events import Gpu, GpuSample
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
            app.screen.post_message(InstancesRefreshed({"gpu": running}, {"gpu": 1.006}))
            await pilot.pause()
            assert _row(instances, "GPU")["GPU"].startswith("97% ")
            await pilot.resize_terminal(200, 36)
            await pilot.pause()
            row = _row(instances, "GPU")
            assert row["Market"] == "spot" and row["$/h"] == "1.006", row
            assert instances.cursor_row == 0
            # a stopped machine has no GPU figure from before
            stopped = Instance("i-0123", "nb-gpu", "gpu", "stopped", "g5.xlarge", True,
                               "us-east-1a", None, "", "", "")  # fmt: skip
            app.screen.post_message(InstancesRefreshed({"gpu": stopped}, {"gpu": None}))
            await pilot.pause()
            assert _row(instances, "GPU")["GPU"] == "—"
    finally:
        MainScreen.auto_refresh = True
