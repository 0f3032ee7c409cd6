"""The app skeleton, driven with Textual's Pilot."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Log

from nbterm.app import NbtermApp
from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.screens.first_run import FirstRunScreen
from nbterm.screens.help import HelpScreen
from nbterm.screens.main import MainScreen
from nbterm.widgets.sync_log import SyncLogPane

CONFIG = """
[hosts.gpu]
instance = "nb-gpu"
template = "gpu"

[hosts.lab]
hostname = "lab.example.org"
port = 2222

[templates.gpu]
ami = "ami-0abcdef1234567890"
instance_type = "g5.xlarge"
spot = true

[[sync]]
host = "gpu"
remote = "~/notebooks/"
local = "/tmp/nbterm-ui-test/notebooks/"
"""


def _cells(table: DataTable[str]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_main_screen_lists_hosts_tunnels_and_sync_rules(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    app = NbtermApp(paths, load_config(write_config(CONFIG)))
    async with app.run_test(size=(200, 36)) as pilot:  # wide enough for every column
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        instances = _cells(app.screen.query_one("#instances-table", DataTable))
        assert [row[:3] for row in instances] == [
            ["gpu", "EC2", "nb-gpu"],
            ["lab", "SSH", "lab.example.org:2222"],
        ]
        assert (instances[0][4], instances[0][6]) == ("g5.xlarge", "spot")
        tunnels = _cells(app.screen.query_one("#tunnels-table", DataTable))
        assert [row[:3] for row in tunnels] == [
            ["gpu", "http://127.0.0.1:8157/", "down"],
            ["lab", "http://127.0.0.1:8158/", "down"],
        ]
        log = app.screen.query_one("#sync-log", Log)
        assert "gpu: ~/notebooks/ -> /tmp/nbterm-ui-test/notebooks/ (*.ipynb)" in log.lines[0]


async def test_help_opens_with_question_mark_and_q_closes_only_the_help(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    app = NbtermApp(paths, load_config(write_config(CONFIG)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        actions = [row[1] for row in app.screen.rows]
        assert {"Quit", "Help", "Reload config"} <= set(actions)
        await pilot.press("q")
        assert isinstance(app.screen, MainScreen)
        assert app.is_running
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_reload_keeps_the_old_config_when_the_new_one_is_bad(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    app = NbtermApp(paths, load_config(write_config(CONFIG)))
    async with app.run_test(size=(100, 30)) as pilot:
        write_config('[hosts.lab]\nhostname = "lab"\nprot = 1\n')
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert list(app.screen.config.hosts) == ["gpu", "lab"]
        notes = [n.message for n in app._notifications]
        assert any("unknown key 'prot'; did you mean 'port'?" in note for note in notes)
        app.screen.query_one(SyncLogPane).write("gpu: i-0123 is terminated")  # a record to keep
        write_config('[hosts.other]\nhostname = "other.example.org"\n')
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert list(app.screen.config.hosts) == ["other"]
        # the reload keeps what the Sync log said (before: the whole log was wiped)
        lines = app.screen.query_one("#sync-log", Log).lines
        assert any("gpu: i-0123 is terminated" in line for line in lines), lines
        assert any("config reloaded" in line for line in lines), lines


async def test_first_run_creates_a_private_starter_config(paths: Paths) -> None:
    app = NbtermApp(paths, None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FirstRunScreen)
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert paths.config_file.exists()
    assert stat.S_IMODE(paths.config_file.stat().st_mode) == 0o600


async def test_first_run_imports_hosts_from_the_users_ssh_config(
    paths: Paths, isolated_home: Path
) -> None:
    ssh_config = isolated_home / ".ssh" / "config"
    ssh_config.parent.mkdir(mode=0o700)
    ssh_config.write_text("Host lab\n    HostName lab.example.org\n    Port 2200\n")
    app = NbtermApp(paths, None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.screen.config.hosts["lab"].port == 2200


async def test_a_running_instance_without_a_tunnel_is_pointed_out_once(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    import datetime as dt

    from nbterm.services.cloud.instance import Instance
    from nbterm.ui.messages import InstancesRefreshed

    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        forgotten = Instance(
            "i-0123",
            "nb-gpu",
            "gpu",
            "running",
            "g5.xlarge",
            True,
            "us-east-1a",
            started,
            "",
            "",
            "",
        )
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(2):
                app.screen.post_message(InstancesRefreshed({"gpu": forgotten}, {"gpu": 0.5}))
                await pilot.pause()
            notes = [n.message for n in app._notifications if "no tunnel open" in n.message]
            assert len(notes) == 1
            assert "gpu (i-0123) has been running 2.0 h with no tunnel open, $0.50/h" in notes[0]
    finally:
        MainScreen.auto_refresh = True


async def test_the_guard_column_says_what_the_instance_guard_does(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    import time

    from nbterm.services.cloud.instance import Instance
    from nbterm.services.remote.events import GuardReport
    from nbterm.ui.messages import InstancesRefreshed, ServiceEvent

    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        stop_at = time.mktime((2026, 11, 27, 23, 45, 0, 0, 0, -1))
        reports = [
            (GuardReport("gpu", True, True, 3.0, stop_at, attached=True), "armed"),
            (
                GuardReport(
                    "gpu",
                    True,
                    True,
                    34.2,
                    stop_at,
                    attached=True,
                    reason="idle: CPU 0.01",
                    idle_limit_minutes=60.0,
                ),
                "idle 34/60 min",
            ),
            (
                GuardReport(
                    "gpu",
                    True,
                    True,
                    0.0,
                    stop_at,
                    attached=True,
                    reason="busy: GPU 1 97%, CPU 1.0 cores",
                ),
                "busy GPU 1 97%",
            ),
            (
                GuardReport(
                    "gpu", True, True, 0.0, attached=True, reason="busy: [bold]x" + "y" * 300
                ),
                "busy [bold]xyy",
            ),
            (
                GuardReport("gpu", True, True, 0.0, attached=True, reason="busy: CPU 1.0 cores"),
                "busy CPU 1.0",
            ),
            (
                GuardReport("gpu", True, True, 0.0, attached=True, reason="busy: a kernel is busy"),
                "busy kernel",
            ),
            (GuardReport("gpu", True, True, 3.0, stop_at), "stops 23:45"),
            (GuardReport("gpu", True, False), "not running"),
            (GuardReport("gpu", True, True, failed="sudo: a password is required"), "CANNOT stop"),
            (GuardReport("gpu", False, False, user_off=True), "off"),
        ]
        async with app.run_test(size=(140, 36)) as pilot:
            table = app.screen.query_one("#instances-table", DataTable)
            assert _cells(table)[0][-1] == "—"
            for report, shown in reports:
                app.screen.post_message(ServiceEvent(report))
                await pilot.pause()
                assert _cells(table)[0][-1] == shown
            log = app.screen.query_one("#sync-log", Log)
            assert any("could NOT power the instance off: sudo: a password" in line
                       for line in log.lines)  # fmt: skip
            # a guard not running (the next up starts it) is a warning that leaves soon; one that
            # cannot power off stays a minute; both stay in the Sync log
            notes = {n.message: n for n in app._notifications if n.title == "Idle guard"}
            quiet = notes["gpu: the idle guard is armed but not running (the next up starts it)"]
            assert (quiet.severity, quiet.timeout) == ("warning", 10)
            loud = [n for m, n in notes.items() if "could NOT power" in m]
            assert [(n.severity, n.timeout) for n in loud] == [("error", 60)]
            assert any("armed but not running" in line for line in log.lines)
            # stopped (by d, t, a limit or elsewhere): neither idle nor guarded now
            app.screen.post_message(ServiceEvent(GuardReport("gpu", True, True, 3.0, stop_at)))
            await pilot.pause()
            stopped = Instance("i-0123", "nb-gpu", "gpu", "stopped", "g5.xlarge", True,
                               "us-east-1a", None, "", "", "")  # fmt: skip
            app.screen.post_message(InstancesRefreshed({"gpu": stopped}, {"gpu": None}))
            await pilot.pause()
            row = _cells(table)[0]
            assert (row[-2], row[-1]) == ("—", "—"), row
    finally:
        MainScreen.auto_refresh = True


async def test_the_daily_budget_warns_then_stops_running_instances_after_a_final_sync(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    import datetime as dt

    from nbterm.services.cloud.instance import Instance
    from nbterm.services.cloud.spending import Spend
    from nbterm.ui.messages import InstancesRefreshed

    MainScreen.auto_refresh = False
    try:
        app = NbtermApp(paths, load_config(write_config(CONFIG)))
        started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        running = Instance("i-0123", "nb-gpu", "gpu", "running", "g5.xlarge", True,
                           "us-east-1a", started, "", "", "")  # fmt: skip
        downs: list[tuple[str, bool]] = []

        async def budget_stop(name: str) -> None:
            downs.append((name, True))

        async with app.run_test(size=(140, 36)) as pilot:
            assert app.controller is not None
            app.controller.budget_stop = budget_stop  # type: ignore[method-assign]
            for _ in range(2):  # said once a day
                app.screen.post_message(
                    InstancesRefreshed({"gpu": running}, {"gpu": 1.0}, Spend(16.5, 20.0))
                )
                await pilot.pause()
            warned = [n.message for n in app._notifications if "daily budget" in n.message]
            assert warned == ["today's spending $16.50 is 82% of the daily budget ($20.00)"]
            assert downs == []
            subtitle = str(app.screen.query_one("#instances").border_subtitle)
            assert "today $16.50 of $20.00" in subtitle
            for _ in range(2):  # stopped once, however often EC2 is looked at meanwhile
                app.screen.post_message(
                    InstancesRefreshed({"gpu": running}, {"gpu": 1.0}, Spend(20.1, 20.0))
                )
                await pilot.pause()
            await pilot.pause()
            assert downs == [("gpu", True)]  # a limit's stop: final sync (retried), then stop
            log = app.screen.query_one("#sync-log", Log)
            assert any("reached the daily budget ($20.00): stopping gpu (i-0123) after a final "
                       "sync" in line for line in log.lines)  # fmt: skip
    finally:
        MainScreen.auto_refresh = True


async def test_the_command_palette_names_keys_as_a_person_presses_them(
    paths: Paths, write_config: Callable[[str], Path]
) -> None:
    """Before: "Help (question_mark)"; a key remapped by [keymap] was shown as the default."""
    from textual.command import CommandPalette
    from textual.widgets import OptionList

    config = load_config(write_config(CONFIG + '[keymap]\n"host.sync" = "n"\n'))
    app = NbtermApp(paths, config)
    async with app.run_test(size=(140, 40)) as pilot:
        app.action_command_palette()
        await pilot.pause(0.5)
        assert isinstance(app.screen, CommandPalette)
        options = app.screen.query_one(OptionList)
        titles = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any(t.startswith("Help (?)") for t in titles), titles
        assert any(t.startswith("Sync (n)") for t in titles), titles
        assert not any("question_mark" in t for t in titles), titles
