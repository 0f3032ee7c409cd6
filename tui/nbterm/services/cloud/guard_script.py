"""nbterm's idle guard, as it runs on the instance (sent there by ``services/cloud/guard.py``).

A standalone script: the Python standard library only, no nbterm import, run by the remote's
``python3`` as the login user (no root). Every ``check_seconds`` it reads Jupyter's own
``/api/status``, ``/api/kernels`` and ``/api/terminals`` on 127.0.0.1 (the server nbterm runs,
found through its runtime folder) and the machine's other signals (GPUs, CPU, SSH sessions:
``signals.py``, the laptop side's rules too): a busy signal is never idle, otherwise the latest
activity says since when nothing happened. It powers the machine off when

- the machine has been idle ``idle_minutes`` plus ``grace_minutes`` (or up ``max_hours``,
  busy or not), and
- no nbterm has been attached for ``lease_minutes`` (an attached nbterm renews its lease file,
  ``leases/ID``, every minute and stays in charge: it warns and makes a final sync).

Each laptop that arms the guard writes its own rules (``rules/ID.json``); the guard follows the
most patient of them (the longest idle limit, the longest ``max_hours``, none if any laptop asked
for none), so it never stops sooner than any laptop asked, and says whose rules those are.

With no Jupyter to ask, the machine counts as idle since the guard last saw activity (or since
it started). Power-off is the one privileged step: ``power_off`` (by default ``sudo -n shutdown
-h now``), run once per decision; if it fails, the state file says why and the guard tries again
at the next check. The guard reads its config at every check (so ``nbterm guard off`` takes
effect within one check), keeps one copy running (a lock), and writes what it sees to
``state.json`` for ``nbterm status`` and the cockpit.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

VERSION = 1


def _signals() -> Any:
    """The signals module beside this file: ``nbterm_signals.py`` on the instance (shipped by
    the install), ``signals.py`` in nbterm's package (where tests import this file)."""
    for name in ("nbterm_signals.py", "signals.py"):
        path = Path(__file__).resolve().with_name(name)
        spec = importlib.util.spec_from_file_location("nbterm_signals", path)
        if path.exists() and spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError("nbterm_signals.py is missing beside the guard")


signals = _signals()
SIGNALS = Path(signals.__file__)


def _parse_time(text: object) -> float | None:
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)  # noqa: UP017 - the remote may run Python 3.8
    return value.timestamp()


def _server(runtime: Path) -> dict[str, Any] | None:
    """The newest runtime file of a live Jupyter in the folder nbterm gave it."""
    files = sorted(runtime.glob("jpserver-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files:
        try:
            with path.open("rb") as file:  # a runtime file is under 1 KiB: a huge one is not one
                info = json.loads(file.read(65536).decode("utf-8", errors="surrogateescape"))
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(info, dict):
            return info
    return None


def _get(info: dict[str, Any], path: str) -> Any:
    base = str(info.get("base_url") or "/")
    url = f"http://127.0.0.1:{int(info['port'])}{base}{path}?no_track_activity=1"
    request = urllib.request.Request(url)
    token = info.get("token")
    if token:
        request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read(1_000_000))


def look(runtime: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None, str]:
    """Jupyter as the signals judge it (its kernels: busy, how many, its last activity), its
    terminals (None: it has none to list), and what was seen."""
    info = _server(runtime)
    if info is None:
        return None, None, "no Jupyter running"
    try:
        status = _get(info, "api/status")
        kernels = _get(info, "api/kernels")
    except Exception as exc:  # noqa: BLE001 - a Jupyter that does not answer is said, not fatal
        return None, None, f"Jupyter did not answer: {str(exc)[:120]}"
    busy = isinstance(kernels, list) and any(
        isinstance(k, dict) and k.get("execution_state") == "busy" for k in kernels
    )
    last = _parse_time(status.get("last_activity") if isinstance(status, dict) else None)
    count = len(kernels) if isinstance(kernels, list) else 0
    terminals: list[dict[str, Any]] | None = None
    try:  # a Jupyter without the terminals extension answers 404
        listed = _get(info, "api/terminals")
    except Exception:  # noqa: BLE001
        listed = None
    if isinstance(listed, list):
        terminals = [{"name": str(t.get("name"))[:16], "last": _parse_time(t.get("last_activity"))}
                     for t in listed[:16] if isinstance(t, dict)]  # fmt: skip
    seen = f"{count} kernel(s)" + (", busy" if busy else "")
    return {"busy": busy, "count": count, "last": last}, terminals, seen


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as file:  # each file is a few hundred bytes: a huge one is not one
            return json.loads(file.read(65536).decode("utf-8", errors="surrogateescape"))
    except (OSError, ValueError, RecursionError):
        return None


def _minutes(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if 0 <= number < 1e9 else None


NEVER_HORIZON_MINUTES = 24 * 60.0
"""A laptop that asked never to be stopped for idleness: its word lapses this long after it
left (its lease stopped being renewed)."""


def _horizon_minutes(rule: dict[str, Any]) -> float:
    """How long after its laptop left a rule still counts: until that rule itself would have
    let the machine stop (its lease, then its idle limit or its ``max_hours``)."""
    idle = _minutes(rule.get("idle_minutes"))
    hours = _minutes(rule.get("max_hours"))
    lease = _minutes(rule.get("lease_minutes")) or 0.0
    if idle is None and hours is None:
        return lease + NEVER_HORIZON_MINUTES
    limits = [idle + (_minutes(rule.get("grace_minutes")) or 0.0)] if idle is not None else []
    limits += [60 * hours] if hours is not None else []
    return lease + max(limits)


def _left_since(folder: Path, rule_path: Path, now: float) -> float:
    """Seconds since the laptop of ``rules/ID.json`` last renewed ``leases/ID`` (or armed)."""
    newest = 0.0
    for path in (folder / "leases" / rule_path.stem, rule_path):
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return max(0.0, now - newest)


def rules_in_force(
    folder: Path, config: dict[str, Any], now: float | None = None
) -> dict[str, Any]:
    """The most patient of the rules each laptop armed the guard with (``rules/*.json``; the
    config's own when there are none): no stop comes sooner than any of them asked. A laptop's
    rules lapse once it has been gone for longer than they would have kept the machine up, so
    a patient laptop that left last week does not rule this week's sessions."""
    now = time.time() if now is None else now
    rules = []
    for path in sorted((folder / "rules").glob("*.json"))[:64]:
        rule = _read_json(path)
        if isinstance(rule, dict) and (
            _left_since(folder, path, now) <= 60 * _horizon_minutes(rule)
        ):
            rules.append(rule)
    if not rules:
        rules = [config]
    idle_limit: float | None = 0.0
    by = ""
    for rule in rules:
        idle = _minutes(rule.get("idle_minutes"))
        total = None if idle is None else idle + (_minutes(rule.get("grace_minutes")) or 0.0)
        name = str(rule.get("by") or "")[:64]
        if total is None:  # this laptop asked that idleness stop nothing
            if idle_limit is not None:
                idle_limit, by = None, name
        elif idle_limit is not None and total >= idle_limit:
            idle_limit, by = total, name
    hours = [_minutes(rule.get("max_hours")) for rule in rules]
    leases = [_minutes(rule.get("lease_minutes")) or 0.0 for rule in rules]
    return {
        "idle_limit_minutes": idle_limit,
        "max_hours": None if any(h is None for h in hours) else max(h or 0.0 for h in hours),
        "lease_minutes": max(leases) if leases else 10.0,
        "by": by,
        "laptops": len(rules),
    }


def leases(folder: Path, now: float) -> list[dict[str, Any]]:
    """Each attached (or once attached) nbterm's lease: who, and how old (the oldest form, one
    ``lease`` file for every nbterm, still counts)."""
    found = []
    paths = sorted((folder / "leases").glob("*"))[:64]
    for path in [*paths, folder / "lease"]:
        try:
            age = max(0.0, now - path.stat().st_mtime)
            with path.open("rb") as file:
                by = file.read(64).decode("utf-8", errors="replace").strip()
        except OSError:
            continue
        found.append({"id": path.name[:32] if path.parent.name == "leases" else "",
                      "by": by, "age": age})  # fmt: skip
    return found


def _extended_until(folder: Path) -> float:
    """Until when ``nbterm guard extend`` postponed the idle stop (epoch seconds; 0: never)."""
    try:
        with (folder / "extend").open("rb") as file:
            value = float(file.read(32).decode("ascii", errors="replace").strip())
    except (OSError, ValueError):
        return 0.0
    return value if 0 < value < 1e11 else 0.0


DECISIONS = 20
"""How many of its last decisions (busy to idle and back, a power-off) the guard keeps."""


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / "state.json")


def _uptime() -> float:
    """Seconds since the machine booted (a stop and start boots it again)."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0  # no uptime to go by: the max_hours rule waits rather than guesses


def run(config_path: Path) -> int:
    config_path = config_path.resolve()
    folder = config_path.parent
    lock = open(folder / "guard.lock", "a")  # noqa: SIM115 - held for the guard's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # one guard per machine and user: the running one reads the new config
    script = Path(__file__).resolve()
    script_time = (script.stat().st_mtime, SIGNALS.stat().st_mtime)
    started = time.time()
    active_at = started  # the last moment anything was seen happening
    cpu = signals.CpuSampler(exclude=(os.getpid(),))
    before = _read_json(folder / "state.json")  # the last stop is kept across runs (and boots)
    before = before if isinstance(before, dict) else {}
    last_stop = before.get("last_stop")
    kept = before.get("decisions")
    decisions = [d for d in kept if isinstance(d, dict)] if isinstance(kept, list) else []
    decisions = decisions[-DECISIONS:]
    previous: dict[str, dict[str, Any]] = {}  # each signal as the last check saw it
    while True:
        config = json.loads(config_path.read_text())
        now = time.time()
        if not config.get("armed", False):
            _write_state(folder, {"version": VERSION, "armed": False, "pid": os.getpid(),
                                  "checked": now, "seen": "disarmed"})  # fmt: skip
            return 0
        kernels, terminals, seen = look(folder.parent / config["runtime"])
        gpu = signals.gpus(str(config.get("gpu_command") or "nvidia-smi"))
        verdict = signals.judge(kernels, gpu, cpu.sample(now), config, terminals=terminals,
                                sessions=signals.ssh_sessions(), now=now)  # fmt: skip
        busy, reason, signal_list = verdict["busy"], verdict["reason"], verdict["signals"][:16]
        if verdict["active_at"] is not None:  # never idle longer than the guard has looked
            active_at = max(active_at, verdict["active_at"])
        for item in signal_list:  # since when each signal has said what it says
            was = previous.get(item["signal"])
            item["since"] = was["since"] if was and was["busy"] == item["busy"] else now
        previous = {item["signal"]: item for item in signal_list}
        if not decisions or decisions[-1].get("busy") != busy:
            decisions = [*decisions, {"at": now, "busy": busy, "reason": reason[:200]}]
            decisions = decisions[-DECISIONS:]
        idle = max(0.0, now - active_at)
        rules = rules_in_force(folder, config, now)
        held = leases(folder, now)
        lease = min((item["age"] for item in held), default=float("inf"))
        lease_limit = 60 * rules["lease_minutes"]
        stops = []  # when each rule would power off
        extended = _extended_until(folder)  # `nbterm guard extend`: no idle stop before it
        if rules["idle_limit_minutes"] is not None:
            stops.append(max(active_at + 60 * rules["idle_limit_minutes"], extended))
        if rules["max_hours"] is not None:
            stops.append(now - _uptime() + 3600 * rules["max_hours"])
        stop_at = min(stops) if stops else float("inf")
        state: dict[str, Any] = {
            "version": VERSION, "armed": True, "pid": os.getpid(), "checked": now,
            "idle_seconds": idle,
            "stop_at": max(stop_at, now - lease + lease_limit) if stops else None,
            "attached": lease < lease_limit, "seen": seen, "rules": rules,
            "busy": busy, "reason": reason, "signals": signal_list[:16],
            "extended_until": extended if extended > now else None,
            "leases": [item for item in held if item["age"] < 7 * 86400][:16],
            "last_stop": last_stop, "decisions": decisions,
        }  # fmt: skip
        if now >= stop_at and lease >= lease_limit:
            hours = rules["max_hours"]
            uptime_up = hours is not None and _uptime() >= 3600 * hours
            why = (f"up for {hours:g} h (max_hours)" if uptime_up
                   else f"idle for {idle / 60:.0f} min ({reason})")  # fmt: skip
            last_stop = {"at": now, "why": why, "by": rules["by"]}
            decisions = [*decisions, {"at": now, "busy": False, "reason": f"powering off: {why}"}]
            decisions = decisions[-DECISIONS:]
            state.update(powering_off=True, last_stop=last_stop, decisions=decisions)
            _write_state(folder, state)
            done = subprocess.run(  # noqa: S602 - the configured command, by design
                config["power_off"], shell=True, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                state["powering_off"] = False
                state["failed"] = (done.stderr or done.stdout).strip()[-300:] or (
                    f"exit {done.returncode}"
                )
        _write_state(folder, state)
        time.sleep(float(config["check_seconds"]))
        if (script.stat().st_mtime, SIGNALS.stat().st_mtime) != script_time:  # a newer guard
            # was installed: become it
            lock.close()
            os.execv(sys.executable, [sys.executable, str(script), str(config_path)])  # noqa: S606


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
