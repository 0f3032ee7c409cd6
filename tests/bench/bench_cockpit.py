"""Benchmark: the cockpit itself.

    .venv/bin/python -m tests.bench.bench_cockpit [--runs 15] [--cpu-seconds 120]

(1) start-up to the first full screen in real tmux, beside a bare Textual app with the same
widgets (tests/bench/bare_app.py); target <= 1.2x. (1b) quit with no host up, from the key to
the shell's prompt, in the same tmux: nbterm with three hosts and `nbterm --demo` (its local
EC2, SSH server and Jupyter all stopped and removed) beside the bare app; target <= 0.5 s. (2)
CPU of the idle app with three hosts up (tunnels probing, sync rules watching) over 120 s (four
timed syncs per rule: a shorter window counts a sync's rsync or not depending on when it ends),
the app, its tunnels' forwarder processes and the rsync/ssh it runs; target under 2% of a core.
(3) With 200 instances and 20 tunnels in the model, each tunnel reporting its health every
second (five times the real rate): key press to updated screen (in process, headless: from the
key event to the first screen update that draws the moved cursor), p95 under 50 ms; resident
memory under 150 MB. (3b) The same with 1,000 hosts (950 instances) and 50 tunnels.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.common import median, percentile
from tests.harness.procs import descendants
from tests.harness.remote import remote_config_text, remote_shell, stop_remote_jupyter_sync
from tests.harness.sshd import make_sshd
from tests.harness.tmux import TmuxScreen

ROOT = Path(__file__).resolve().parents[2]


def _first_screen(command: str, needles: tuple[str, ...], env_prefix: str = "") -> float:
    screen = TmuxScreen(f"{env_prefix}{command}", width=120, height=36)
    started = time.perf_counter()
    screen.start()
    try:
        while True:
            text = screen.capture()
            if all(needle in text for needle in needles):
                return time.perf_counter() - started
            if time.perf_counter() - started > 30:
                raise TimeoutError(f"never drew {needles}: {text}")
            time.sleep(0.01)  # each look is a tmux client: a tighter loop slows what it times
    finally:
        screen.close()


def _compiled() -> None:
    """Bytecode for nbterm and the bare app, as ``pip install`` leaves it for a user's nbterm.

    This checkout's install is editable, and with ``PYTHONDONTWRITEBYTECODE`` set (as on these
    machines) every start would compile nbterm's modules afresh: about 35 ms that no installed
    nbterm spends, counted on one side only.
    """
    import compileall

    import nbterm

    for folder in (Path(nbterm.__file__).parent, ROOT / "tests" / "bench"):
        compileall.compile_dir(folder, quiet=1)


def startup(runs: int, home: Path) -> tuple[list[float], list[float]]:
    _compiled()
    hosts = ["alpha", "beta", "gamma"]
    config = home / "startup.toml"
    config.write_text("".join(f'[hosts.{h}]\nhostname = "127.0.0.1"\n' for h in hosts))
    config.chmod(0o600)
    python = shlex.quote(sys.executable)
    env = (
        f"HOME={shlex.quote(str(home))} NBTERM_STATE_DIR={shlex.quote(str(home / 'st'))} "
        f"NBTERM_RUNTIME_DIR={shlex.quote(str(home / 'rt'))} "
    )
    ours, bare = [], []
    needles = ("gamma", "Sync log", "Help")
    for _ in range(runs):
        ours.append(_first_screen(f"{python} -m nbterm --config {config}", needles, env))
        bare.append(_first_screen(f"{python} -m tests.bench.bare_app {' '.join(hosts)}", needles,
                                  f"cd {shlex.quote(str(ROOT))} && "))  # fmt: skip
    return ours, bare


def _quit_time(command: str, needles: tuple[str, ...], settle: float) -> float:
    """Seconds from ``q`` to the shell's next line, once ``needles`` are on the screen."""
    screen = TmuxScreen(f"{command}; echo EXITED-$?", width=120, height=36)
    screen.start()
    try:
        started = time.perf_counter()
        while not all(needle in screen.capture() for needle in needles):
            if time.perf_counter() - started > 60:
                raise TimeoutError(f"never drew {needles}: {screen.capture()}")
            time.sleep(0.01)
        time.sleep(settle)  # the first health probes and timers have run: a cockpit at rest
        screen.send("q")
        started = time.perf_counter()
        while True:
            # the pane closes with its shell: a capture that fails is the end too
            shown = screen.tmux("capture-pane", "-p", "-t", "main")
            if shown.returncode != 0 or "EXITED-" in shown.stdout:
                break
            if time.perf_counter() - started > 30:
                raise TimeoutError(f"never quit: {screen.capture()}")
            time.sleep(0.003)
        return time.perf_counter() - started
    finally:
        screen.close()


def quitting(runs: int, home: Path) -> dict[str, list[float]]:
    python = shlex.quote(sys.executable)
    config = home / "startup.toml"  # written by startup()
    env = (
        f"HOME={shlex.quote(str(home))} NBTERM_STATE_DIR={shlex.quote(str(home / 'st'))} "
        f"NBTERM_RUNTIME_DIR={shlex.quote(str(home / 'rt'))} "
    )
    needles = ("gamma", "Sync log", "Help")
    times: dict[str, list[float]] = {"bare": [], "ours": [], "demo": []}
    for _ in range(runs):
        times["bare"].append(_quit_time(
            f"cd {shlex.quote(str(ROOT))} && {python} -m tests.bench.bare_app alpha beta gamma",
            needles, 0.5))  # fmt: skip
        times["ours"].append(_quit_time(f"{env}{python} -m nbterm --config {config}", needles, 0.5))
        times["demo"].append(_quit_time(f"{env}{python} -m nbterm --demo", ("nb-gpu", "Help"), 3))
    return times


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime


def idle_cpu(seconds: float, home: Path) -> tuple[float, str]:
    sshd = make_sshd()
    sshd.start()
    screen: TmuxScreen | None = None
    try:
        base = remote_config_text(sshd, local_port=37157).split("[hosts.box]")[0]
        # nbterm's own keepalive (15 s), not the tests' 1 s that notices a dead link quickly
        text = "\n".join(line for line in base.splitlines() if "keepalive" not in line) + "\n"
        for index in range(3):
            remote_shell(sshd, f"mkdir -p bench-idle-{index}")
            text += (
                f'[hosts.box{index}]\nhostname = "{sshd.host}"\nport = {sshd.port}\n'
                f'user = "{sshd.user}"\nidentity_file = "{sshd.client_key}"\n'
                f'jupyter = {{ tmux_session = "nbterm-bench-{index}", '
                f"remote_port = {18890 + index} }}\n"
            )
        for index in range(3):
            text += (
                f'[[sync]]\nhost = "box{index}"\nremote = "~/bench-idle-{index}/"\n'
                f'local = "{home / f"idle-{index}"}"\n'
            )
        config = home / "idle.toml"
        config.write_text(text)
        config.chmod(0o600)
        state = home / "idle-state"
        state.mkdir(mode=0o700)
        (state / "known_hosts").write_text(
            "".join(f"box{i} {sshd.host_key_pub}\n" for i in range(3))
        )
        env = (
            f"HOME={shlex.quote(str(home))} NBTERM_STATE_DIR={shlex.quote(str(state))} "
            f"NBTERM_RUNTIME_DIR={shlex.quote(str(home / 'idle-rt'))} "
        )
        screen = TmuxScreen(f"{env}{shlex.quote(sys.executable)} -m nbterm --config {config}",
                            width=120, height=36)  # fmt: skip
        screen.start()
        screen.wait_for("box2", "Help")
        for key in ("u", "Down", "u", "Down", "u"):
            screen.send(key)
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        while screen.capture().count(" up ") < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert screen.server_pid is not None
        app = next(
            pid for pid in descendants(screen.server_pid)
            if b"nbterm" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )  # fmt: skip
        time.sleep(5)  # settled: first syncs done
        # the tunnels run in forwarder processes of their own (children of the app, alive):
        # their CPU counts too
        forwarders = [
            pid for pid in descendants(app)
            if b"nbterm.services.remote.forwarder" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip
        before, started = _cpu_ticks(app), time.monotonic()
        before += sum(_cpu_ticks(pid) for pid in forwarders)
        time.sleep(seconds)
        after = _cpu_ticks(app) + sum(_cpu_ticks(pid) for pid in forwarders)
        used = (after - before) / os.sysconf("SC_CLK_TCK")
        elapsed = time.monotonic() - started
        states = [
            line for line in screen.capture().splitlines() if "box" in line and "http" in line
        ]
        return used / elapsed * 100, "\n".join(states)
    finally:
        if screen is not None:
            screen.close()
        for index in range(3):
            remote_shell(sshd, f"rm -rf bench-idle-{index}")
            subprocess.run(
                ["ssh", *sshd.openssh_args(),
                 f"tmux kill-session -t nbterm-bench-{index} 2>/dev/null; "
                 f"for f in .nbterm/runtime/nbterm-bench-{index}/jpserver-*.json; do "
                 "kill $(sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p' $f) 2>/dev/null; done; true"],
                capture_output=True, check=False,
            )  # fmt: skip
        stop_remote_jupyter_sync(sshd, home / "cleanup-known")
        sshd.remove()


async def responsiveness(
    home: Path, instances_n: int = 200, tunnels_n: int = 20
) -> tuple[list[float], float]:
    os.environ.update(HOME=str(home), NBTERM_STATE_DIR=str(home / "rs"),
                      NBTERM_RUNTIME_DIR=str(home / "rr"),
                      AWS_ENDPOINT_URL="http://127.0.0.1:9")  # fmt: skip
    from textual import events
    from textual.widgets import DataTable

    from nbterm.app import NbtermApp
    from nbterm.config import load_config
    from nbterm.locations import resolve_paths
    from nbterm.screens.main import MainScreen
    from nbterm.services.cloud.instance import Instance
    from nbterm.services.remote.events import TunnelHealth
    from nbterm.ui.messages import InstancesRefreshed, ServiceEvent

    config = home / f"big-{instances_n}.toml"
    text = '[aws]\nregion = "us-east-1"\n'
    text += "".join(f'[hosts.gpu{i:04}]\ninstance = "nb-{i:04}"\n' for i in range(instances_n))
    text += "".join(f'[hosts.lab{i:02}]\nhostname = "10.0.{i // 250}.{i % 250}"\n'
                    for i in range(tunnels_n))  # fmt: skip
    config.write_text(text)
    config.chmod(0o600)
    MainScreen.auto_refresh = False
    app = NbtermApp(resolve_paths(config), load_config(config))
    now = dt.datetime.now(dt.UTC)
    instances: dict[str, Instance | None] = {
        f"gpu{i:04}": Instance(
            f"i-{i:017x}",
            f"nb-{i:04}",
            f"gpu{i:04}",
            "running",
            "g5.xlarge",
            i % 2 == 0,
            "us-east-1a",
            now - dt.timedelta(hours=i % 50),
            "",
            "198.51.100.1",
            "10.0.0.1",
        )
        for i in range(instances_n)
    }
    times: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.screen.post_message(InstancesRefreshed(instances, {name: 0.42 for name in instances}))
        await pilot.pause()
        stop = False

        async def health() -> None:
            tick = 0
            while not stop:
                tick += 1
                for i in range(tunnels_n):
                    app.screen.post_message(ServiceEvent(TunnelHealth(
                        f"lab{i:02}", "up", 8157 + i, latency_ms=3.0 + (tick + i) % 7,
                        kernels=1, connections=1, last_activity=now.isoformat())))  # fmt: skip
                await asyncio.sleep(1.0)  # every tunnel probed each second: 5x the real rate

        feeder = asyncio.create_task(health())
        await asyncio.sleep(1)
        # a key counts as shown at the first screen update that draws the cursor where it
        # moved: each update is recorded with the row it drew (an update can come before this
        # loop sees the move; the bench once counted only those after, and waited for the next)
        displays: list[tuple[float, int]] = []
        original = app._display
        table = app.screen.query_one("#instances-table", DataTable)

        def spy(screen: Any, renderable: Any) -> None:
            displays.append((time.perf_counter(), table.cursor_row))
            original(screen, renderable)

        app._display = spy  # type: ignore[method-assign]
        driver = app._driver
        assert driver is not None
        for index in range(120):
            key = "down" if index % 40 < 30 else "up"
            before = table.cursor_row
            seen = len(displays)
            started = time.perf_counter()
            driver.send_message(events.Key(key, None))
            while table.cursor_row == before:
                await asyncio.sleep(0.0005)
            row = table.cursor_row
            while not [t for t, drawn in displays[seen:] if drawn == row]:
                await asyncio.sleep(0.0005)
            shown = next(t for t, drawn in displays[seen:] if drawn == row)
            times.append((shown - started) * 1000)
            await asyncio.sleep(0.05)
        stop = True
        await feeder
    rss_kb = 0
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                rss_kb = int(line.split()[1])
    return times, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)  # start-up varies by 100 ms run to run
    parser.add_argument("--cpu-seconds", type=float, default=120)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nbterm-bench-cockpit-"))
    ours, bare = startup(args.runs, home)
    print(
        "(1) start-up to the first full screen in tmux (median of "
        f"{args.runs}, runs taken in turn): bare Textual {median(bare) * 1000:.0f} ms "
        f"(fastest {min(bare) * 1000:.0f}), nbterm {median(ours) * 1000:.0f} ms (fastest "
        f"{min(ours) * 1000:.0f}): {median(ours) / median(bare):.2f}x   target <= 1.2x"
    )
    quits = quitting(args.runs, home)
    print(
        f"(1b) quit with no host up, key to the shell (median of {args.runs}): bare Textual "
        f"{median(quits['bare']) * 1000:.0f} ms, nbterm {median(quits['ours']) * 1000:.0f} ms "
        f"({median(quits['ours']) / median(quits['bare']):.2f}x), nbterm --demo "
        f"{median(quits['demo']) * 1000:.0f} ms (max {max(quits['demo']) * 1000:.0f} ms)   "
        "target <= 0.5 s"
    )
    share, states = idle_cpu(args.cpu_seconds, home)
    print(
        f"(2) idle, three hosts up and syncing, over {args.cpu_seconds:g} s: "
        f"{share:.2f}% of a core   target < 2%"
    )
    print("    " + states.replace("\n", "\n    "))
    for label, instances_n, tunnels_n in (("(3)", 200, 20), ("(3b)", 950, 50)):
        times, rss = asyncio.run(responsiveness(home, instances_n, tunnels_n))
        print(
            f"{label} {instances_n + tunnels_n} hosts ({instances_n} EC2 instances), {tunnels_n} "
            f"tunnels at 1 Hz each: key to screen p50 {median(times):.1f} ms, p95 "
            f"{percentile(times, 95):.1f} ms, max {max(times):.1f} ms (target p95 < 50 ms); "
            f"peak RSS so far {rss:.0f} MB (target < 150 MB)"
        )


if __name__ == "__main__":
    main()
