"""The signals the guard judges by besides Jupyter (nbterm.services.cloud.signals): what
nvidia-smi prints, a CPU-bound process, the verdict and its words; and the guard's files stay
standard-library only (they run on the instance with its python3)."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

from nbterm.services.cloud import signals

FOUR = "0, 0, 3, 24576\n1, 97, 20011, 24576\n2, [N/A], 0, 24576\n3, 2, 5, 24576\n"


def test_one_and_four_gpus_as_nvidia_smi_prints_them() -> None:
    assert signals.parse_gpus("0, 12, 1024, 24576\n") == [
        {"index": 0, "util": 12, "used": 1024, "total": 24576}
    ]
    cards = signals.parse_gpus(FOUR + "junk\n" + "9, 900, 1, 1\n")
    assert [card["index"] for card in cards] == [0, 1, 3]  # "[N/A]" and nonsense left out
    busy, seen, reason = signals.judge(False, cards, 0.01, {})
    assert busy and reason == "busy: GPU 1 97%"
    assert {s["signal"] for s in seen} == {"kernels", "GPU 0", "GPU 1", "GPU 3", "CPU"}


def test_idle_says_what_each_signal_saw() -> None:
    busy, _seen, reason = signals.judge(False, [], 0.01, {})
    assert not busy and reason == "idle: kernels idle, CPU 0.01 cores"
    assert signals.judge(True, None, None, {})[2] == "busy: a kernel is busy"
    assert signals.judge(False, None, 0.9, {"cpu_busy_cores": 1.0})[0] is False


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
