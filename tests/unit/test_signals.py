"""The signals the guard judges by besides Jupyter (nbterm.services.cloud.signals): what
nvidia-smi prints, a CPU-bound process, the verdict and its words; and the guard's files stay
standard-library only (they run on the instance with its python3)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

from nbterm.services.cloud import signals

FOUR = "0, 0, 3, 24576\n1, 97, 20011, 24576\n2, [N/A], 0, 24576\n3, 2, 5, 24576\n"


IDLE_JUPYTER = {"busy": False, "count": 1, "last": 1000.0}


def test_one_and_four_gpus_as_nvidia_smi_prints_them() -> None:
    assert signals.parse_gpus("0, 12, 1024, 24576\n") == [
        {"index": 0, "util": 12, "used": 1024, "total": 24576}
    ]
    cards = signals.parse_gpus(FOUR + "junk\n" + "9, 900, 1, 1\n")
    assert [card["index"] for card in cards] == [0, 1, 3]  # "[N/A]" and nonsense left out
    verdict = signals.judge(IDLE_JUPYTER, cards, 0.01, {}, now=2000.0)
    assert verdict["busy"] and verdict["reason"] == "busy: GPU 1 97%"
    assert verdict["active_at"] == 2000.0  # busy now
    names = {s["signal"] for s in verdict["signals"]}
    assert names == {"kernels", "GPU 0", "GPU 1", "GPU 3", "CPU"}


def test_idle_says_what_each_signal_saw() -> None:
    verdict = signals.judge(IDLE_JUPYTER, [], 0.01, {}, sessions=[], now=2000.0)
    assert not verdict["busy"]
    assert verdict["reason"] == "idle: kernels 1 idle, CPU 0.01 cores, no SSH session"
    assert verdict["active_at"] == 1000.0  # Jupyter's last activity
    busy_kernel = {"busy": True, "count": 2, "last": 1000.0}
    assert signals.judge(busy_kernel, None, None, {})["reason"] == "busy: a kernel is busy"
    assert signals.judge(None, None, 0.9, {"cpu_busy_cores": 1.0})["busy"] is False
    assert signals.judge(None, None, None, {})["reason"] == "idle: kernels no Jupyter"


def test_a_terminal_or_an_ssh_keystroke_is_activity_not_a_level() -> None:
    """Typing in an SSH session or a Jupyter terminal restarts the idle clock; an open session
    nobody types in does not keep the machine up for ever (its last keystroke ages)."""
    now = 10_000.0
    typed = signals.judge(IDLE_JUPYTER, None, None, {}, now=now,
                          terminals=[{"name": "1", "last": now - 600}],
                          sessions=[{"tty": "pts/3", "input_at": now - 90}])  # fmt: skip
    assert not typed["busy"] and typed["active_at"] == now - 90
    assert "SSH pts/3 typed in 2 min ago" in typed["reason"]
    assert "terminal 1 used 10 min ago" in typed["reason"]
    future = signals.judge(None, None, None, {}, now=now,
                           sessions=[{"tty": "pts/3", "input_at": now + 3600}])  # fmt: skip
    assert future["active_at"] == now  # a clock ahead never postpones beyond now


def _utmp_record(kind: int, pid: int, line: bytes, user: bytes, host: bytes) -> bytes:
    return signals.UTMP_RECORD.pack(kind, pid, line, b"ts/1", user, host, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, b"")  # fmt: skip


def test_utmp_remote_logins_of_this_user_with_a_live_process(tmp_path: Path) -> None:
    import os
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name.encode()
    dead = subprocess.Popen(["true"])
    dead.wait()
    utmp = tmp_path / "utmp"
    utmp.write_bytes(
        _utmp_record(7, os.getpid(), b"pts/41", me, b"10.0.0.9")
        + _utmp_record(7, dead.pid, b"pts/42", me, b"10.0.0.9")  # ended: a stale record
        + _utmp_record(7, os.getpid(), b"pts/43", b"someone-else", b"10.0.0.9")
        + _utmp_record(7, os.getpid(), b"tty1", me, b"")  # a console login, not SSH
        + _utmp_record(6, os.getpid(), b"pts/44", me, b"10.0.0.9")  # not a user process
        + _utmp_record(7, os.getpid(), b"../../etc/shadow", me, b"10.0.0.9")
        + b"\x07" * 100  # a torn last record
    )
    assert signals._utmp_terminals(me.decode(), str(utmp)) == {"/dev/pts/41"}
    assert signals._utmp_terminals(me.decode(), str(tmp_path / "none")) == set()


def test_a_missing_nvidia_smi_is_no_gpu() -> None:
    assert signals.gpus("/nonexistent/nvidia-smi") is None


def test_a_cpu_bound_process_of_this_user_is_one_core() -> None:
    sampler = signals.CpuSampler()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        sampler.sample(time.monotonic())
        time.sleep(1.0)
        used = sampler.sample(time.monotonic())
    finally:
        busy.kill()
        busy.wait()
    assert used is not None and 0.7 < used < 2.5, used


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_guard_and_its_signals_are_standard_library_only() -> None:
    folder = Path(signals.__file__).parent
    for name in ("guard_script.py", "signals.py"):
        outside = _imports(folder / name) - set(sys.stdlib_module_names)
        assert not outside, f"{name} imports {outside}"


def test_guard_extend_takes_a_duration_a_person_writes() -> None:
    import pytest

    from nbterm.cli.common import CliError
    from nbterm.cli.guard_cmds import duration_seconds

    assert duration_seconds("3h") == 3 * 3600
    assert duration_seconds("90m") == 90 * 60
    assert duration_seconds("1.5d") == 1.5 * 86400
    for bad in ("", "3", "3 hours", "-1h", "8d", None):
        with pytest.raises(CliError):
            duration_seconds(bad)


def test_a_templates_thresholds_reach_the_guard(tmp_path: Path) -> None:
    from nbterm.config import load_config
    from nbterm.services.host.up import guard_settings

    path = tmp_path / "config.toml"
    path.write_text(
        '[hosts.gpu]\ninstance = "nb"\ntemplate = "g"\n[templates.g]\n'
        'ami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\nidle_stop_minutes = 30\n'
        "gpu_busy_percent = 10\ncpu_busy_cores = 2\n"
    )
    config = load_config(path)
    settings = guard_settings(config.hosts["gpu"], config.templates["g"])
    assert settings is not None
    assert (settings.gpu_busy_percent, settings.cpu_busy_cores) == (10.0, 2.0)
    rules = json.loads(settings.as_json(armed=True))
    cards = [{"index": 0, "util": 8, "used": 1, "total": 2}]
    assert not signals.judge(None, cards, 1.5, rules)["busy"]  # 8% < 10%, 1.5 < 2 cores
    assert signals.judge(None, cards, 2.5, rules)["reason"] == "busy: CPU 2.5 cores"


def test_what_each_signal_saw_as_a_table_the_remote_text_made_safe() -> None:
    from nbterm.presenters import decision_lines, signal_lines
    from nbterm.services.remote.events import Decision, Signal

    now = time.time()
    lines = signal_lines([Signal("GPU 1", "97% (20011/24576 MiB)", True, now - 60),
                          Signal("SSH pts/3", "typed in 2 min ago", False, now - 120),
                          Signal("CPU", "\x1b[2J[bold]x", False, None)], now)  # fmt: skip
    assert lines[0].split() == ["signal", "value", "since"]
    assert lines[1].startswith("GPU 1") and lines[1].endswith("BUSY")
    assert lines[2].endswith("idle") and "typed in 2 min ago" in lines[2]
    assert "\x1b" not in "".join(lines) and lines[3].split()[2] == "-"
    assert lines[0].index("value") == lines[1].index("97%") == lines[2].index("typed")  # aligned
    said = decision_lines([Decision(now - 30, True, "busy: GPU 1 97%")], now)
    assert said == [time.strftime("%H:%M", time.localtime(now - 30)) + "  busy: GPU 1 97%"]
