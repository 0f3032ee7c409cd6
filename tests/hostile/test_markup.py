"""Remote text is never Textual or Rich markup: a Jupyter that fails while printing ``[/]`` (no
malice needed), ``[link=...]``, ``[@click=app.quit]`` or an unclosed ``[bold`` must not crash the
cockpit, run an action, or be drawn as styles and links. Each payload goes through every path
that can carry remote or error text to the screen: a host's failure words (the toast and the
sync log), a worker's exception, every service event with a free-text field (toasts, the sync
log, the Tunnels pane's cells), the guard's report, and an instance's EC2 name in a table cell.

Invariant: the app is still running, every toast was made with markup off, and the payload
shows literally (its brackets on screen, no link, no style).
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, Log

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.cloud.instance import Instance
from nbterm.services.remote.events import (
    ConnectionChanged,
    GuardReport,
    LimitStopping,
    Notice,
    RemoteEvent,
    SpotInterruption,
    TunnelHealth,
)
from nbterm.services.sync.events import FileFailed, SyncEvent, SyncFailed, SyncWarning
from nbterm.ui.messages import HostStatus, InstancesRefreshed, ServiceEvent

CONFIG = """
[hosts.gpu]
instance = "gpu"

[[sync]]
host = "gpu"
remote = "~/nb/"
local = "/tmp/nbterm-hostile/nb/"
"""

PAYLOADS = (
    "[/]",
    "[link=https://evil.example/]Click here to re-authenticate[/link]",
    "[@click=app.quit]quit[/]",
    "[bold",
    "[reverse]inverted[/reverse]",
)


def events(payload: str) -> list[RemoteEvent | SyncEvent]:
    return [
        Notice("gpu", f"Jupyter failed to start; its last output: {payload}"),
        SpotInterruption("gpu", payload, payload),
        ConnectionChanged("gpu", "reconnecting", payload, 1, 1.0),
        TunnelHealth("gpu", "degraded", 8157, message=payload),
        LimitStopping("gpu", payload),
        GuardReport("gpu", armed=True, running=True, failed=payload),
        SyncFailed("gpu:~/nb/", 23, payload, 1.0),
        SyncWarning("gpu:~/nb/", f"git: {payload}"),
        FileFailed("gpu:~/nb/", f"{payload}.ipynb", payload),
    ]


def _instance(name: str) -> Instance:
    return Instance(
        id="i-0123456789abcdef0", name=name, host="gpu", state="running", type=name,
        spot=False, az="us-east-1a", launch_time=dt.datetime.now(dt.UTC),
        public_dns="", public_ip="127.0.0.1", private_ip="",
    )  # fmt: skip


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_markup_from_the_remote_is_shown_as_text(
    payload: str, paths: Paths, write_config: Callable[[str], Path]
) -> None:
    app = NbtermApp(paths, load_config(write_config(CONFIG)))
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        screen.auto_refresh = False
        await pilot.pause()
        for event in events(payload):
            screen.post_message(ServiceEvent(event))
        screen.post_message(HostStatus("gpu", "failed", f"Jupyter did not start: {payload}"))
        screen.post_message(InstancesRefreshed({"gpu": _instance(payload)}, {"gpu": 1.0}))

        async def fails() -> None:
            raise Boom(f"the remote said {payload}")

        screen.run_worker(fails(), name=f"up {payload}", exit_on_error=False)
        for _ in range(4):
            await pilot.pause()
        assert app.is_running, "the cockpit ended on a payload"
        notes = list(app._notifications)
        assert notes and all(note.markup is False for note in notes)
        messages = "\n".join(note.message for note in notes)
        assert f"Jupyter did not start: {payload}" in messages
        assert f"the remote said {payload}" in messages
        app.screen._refresh_layout()
        for toast in app.query("Toast"):
            toast.render()  # raises on markup; a link would be a style with a meta
        lines = "\n".join(screen.query_one("#sync-log", Log).lines)
        assert payload in lines
        tables = list(screen.query(DataTable))
        cells = [str(c) for t in tables for row in range(t.row_count) for c in t.get_row_at(row)]
        assert any(payload in cell for cell in cells), cells
        for table in tables:
            for row in range(table.row_count):
                table.get_row_at(row)
        await pilot.pause()
        svg = app.export_screenshot()
        assert "evil.example" not in svg or "link" in payload
        assert app.is_running


SOURCE = Path(__file__).resolve().parents[2] / "tui" / "nbterm"
WIDGETS = {"Static", "Label", "Button", "Markdown", "Option"}


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_no_text_that_is_not_our_literal_is_parsed_as_markup() -> None:
    """Held over the source: a toast can never turn markup on (``App.notify`` ignores it, and
    nothing passes ``markup=True``); a ``Static`` or ``Label`` gets a string literal, ``marked()``
    (our literal template with plain values) or ``plain()``; table cells go through
    ``widgets/cells.py`` alone, which hands DataTable plain Text, never a str it would parse."""
    offences: list[str] = []
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(SOURCE)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr in ("border_title", "border_subtitle")
                for t in node.targets
            ):
                value = node.value
                if not _is_literal(value) and not (
                    isinstance(value, ast.Call) and getattr(value.func, "id", "") == "plain"
                ):
                    offences.append(f"{where}:{node.lineno}: a border title from a str")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for keyword in node.keywords:
                if keyword.arg == "markup" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    offences.append(f"{where}:{node.lineno}: markup={ast.unparse(keyword.value)}")
            if name in WIDGETS and node.args:
                first = node.args[0]
                ok = _is_literal(first) or (
                    isinstance(first, ast.Call)
                    and getattr(first.func, "id", "") in ("marked", "plain")
                )
                if not ok and not any(k.arg == "markup" for k in node.keywords):
                    offences.append(f"{where}:{node.lineno}: {name}({ast.unparse(first)})")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if (
                name in ("add_row", "add_rows", "update_cell", "add_column", "add_columns")
                and where != Path("widgets/cells.py")
                and not receiver.endswith("cells")
            ):
                offences.append(f"{where}:{node.lineno}: a table cell outside widgets/cells.py")
    assert not offences, "\n".join(offences)
