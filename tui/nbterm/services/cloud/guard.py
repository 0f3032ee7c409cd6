"""The idle guard on the instance: installed, armed, disarmed and read from the laptop.

Every guard against a forgotten instance used to live in the nbterm process on the laptop: close
the lid and a g5 runs all weekend. With ``idle_stop_minutes`` set, ``up`` installs a small guard
beside Jupyter (``guard_script.py``, run by the remote's ``python3`` as the login user, in
``~/.nbterm/guard``) that powers the machine off when Jupyter has been idle past the limit plus
a grace period and no nbterm has renewed its lease for a while. An attached nbterm renews the
lease every minute and stays in charge (it warns and syncs first).

Installing is idempotent: the script is written only when it changed (a running guard notices
and becomes the new one), the config is rewritten, and a second copy never runs (the guard
holds a lock). ``nbterm guard off HOST`` disarms it and the choice sticks: ``up`` does not arm
it again until ``nbterm guard on HOST``.

What the guard writes (``state.json``) comes from the remote: it is parsed as untrusted data,
every field checked for its type and bounds; text in it is made safe where it is shown.
"""

from __future__ import annotations

import asyncio
import json
import math
import shlex
import time
from dataclasses import dataclass
from importlib import resources

from nbterm.services.remote.events import Decision, GuardReport, Signal
from nbterm.services.remote.jupyter import REMOTE_DIR
from nbterm.services.remote.ssh import Link, run
from nbterm.untrusted_json import Unusable, load_object

GUARD_DIR = f"{REMOTE_DIR}/guard"
LEASE_EVERY = 60.0
"""How often an attached nbterm renews its lease (and reads the guard's state)."""


class GuardError(Exception):
    pass


@dataclass(frozen=True)
class GuardSettings:
    idle_minutes: float | None
    """None: idleness stops nothing (only ``max_hours`` does)."""
    runtime: str
    """Jupyter's runtime folder, relative to ``~/.nbterm`` (where the guard finds the server)."""
    grace_minutes: float = 10.0
    lease_minutes: float = 10.0
    power_off: str = "sudo -n shutdown -h now"
    check_seconds: float = 60.0
    max_hours: float | None = None
    """Power off after this much uptime (the machine's own), idle or not."""
    laptop: str = ""
    """The id of the nbterm that arms it (:mod:`laptop`): its rules and lease are its own."""
    by: str = ""
    """That nbterm's name, for the words."""
    gpu_command: str = "nvidia-smi"
    """How the guard asks the GPUs (:mod:`signals`); absent: no GPU signal."""
    gpu_busy_percent: float = 5.0
    cpu_busy_cores: float = 0.5

    def rules(self) -> dict[str, object]:
        return {
            "by": self.by, "idle_minutes": self.idle_minutes,
            "grace_minutes": self.grace_minutes, "lease_minutes": self.lease_minutes,
            "max_hours": self.max_hours,
        }  # fmt: skip

    def as_json(self, *, armed: bool) -> str:
        return json.dumps({
            **self.rules(), "armed": armed, "power_off": self.power_off,
            "check_seconds": self.check_seconds, "runtime": self.runtime,
            "gpu_command": self.gpu_command, "gpu_busy_percent": self.gpu_busy_percent,
            "cpu_busy_cores": self.cpu_busy_cores,
        })  # fmt: skip


@dataclass(frozen=True)
class Lease:
    """One nbterm's lease on the guard, as the guard last saw it."""

    id: str
    by: str
    age: float
    """Seconds since it was renewed."""


@dataclass(frozen=True)
class GuardState:
    """What the guard last wrote about itself (checked; None fields: not known)."""

    armed: bool
    running: bool
    """Its process is alive (a guard whose machine rebooted is armed but not running)."""
    idle_minutes: float | None = None
    stop_at: float | None = None
    """When it will power off (epoch seconds), if nothing happens and no nbterm attaches."""
    attached: bool = False
    powering_off: bool = False
    failed: str = ""
    """Why the last power-off did not happen (sudo asked for a password...)."""
    seen: str = ""
    user_off: bool = False
    """Disarmed by ``nbterm guard off``: ``up`` leaves it off."""
    rules_by: str = ""
    """Whose rules it follows (the most patient of the laptops that armed it)."""
    laptops: int = 1
    """How many laptops armed it (each with rules of its own)."""
    lease_minutes: float | None = None
    leases: tuple[Lease, ...] = ()
    busy: bool = False
    """At its last check, some signal said busy (a kernel, a GPU, the CPU: :mod:`signals`)."""
    reason: str = ""
    """What it saw, in a person's words ("busy: GPU 0 97%", "idle: ...")."""
    extended_until: float | None = None
    """``nbterm guard extend`` postponed every idle stop until then (epoch seconds)."""
    last_stop_at: float | None = None
    """When the guard last powered the machine off (epoch seconds), kept across boots."""
    last_stop_why: str = ""
    """Why, as the guard saw it then ("idle for 62 min (...)", "up for 8 h (max_hours)")."""
    idle_limit_minutes: float | None = None
    """The idle limit (with its grace) of the rules in force; None: idleness stops nothing."""
    checked: float | None = None
    """When it last looked (epoch seconds)."""
    signals: tuple[Signal, ...] = ()
    decisions: tuple[Decision, ...] = ()

    @property
    def active_at(self) -> float | None:
        """The last moment the guard saw anything happen (epoch seconds)."""
        if self.checked is None or self.idle_minutes is None:
            return None
        return self.checked - 60 * self.idle_minutes

    def stopped_before(self, booted: float) -> str | None:
        """The words for the guard's stop that ended the instance's last run, if it did (it
        stopped the machine before ``booted``, this run's start), else None."""
        at = self.last_stop_at
        if at is None or at > booted or booted - at > 30 * 86400:
            return None
        return f"the idle guard stopped this instance {self.last_stop()}"

    def last_stop(self) -> str:
        """When and why it last powered the machine off ("" if it never did)."""
        if self.last_stop_at is None:
            return ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.last_stop_at))
        return f"at {when}: {self.last_stop_why or 'idle'}"

    def others_attached(self, laptop: str) -> list[str]:
        """The names of the other nbterms whose lease is fresh (they are attached now)."""
        limit = 60 * (self.lease_minutes or 10.0)
        return sorted({lease.by or "another nbterm" for lease in self.leases
                       if lease.id and lease.id != laptop and lease.age < limit})  # fmt: skip

    def report(self, host: str) -> GuardReport:
        return GuardReport(host, self.armed, self.running, self.idle_minutes, self.stop_at,
                           self.attached, self.failed, self.user_off, self.reason,
                           self.extended_until, self.idle_limit_minutes,
                           self.active_at)  # fmt: skip


def script_text(name: str = "guard_script.py") -> str:
    return resources.files("nbterm.services.cloud").joinpath(name).read_text()


def _in_guard_dir(command: str) -> str:
    folder = GUARD_DIR
    return f"cd && umask 077 && mkdir -p {folder} && chmod 700 {folder} && cd {folder} && {command}"


async def _user_off(link: Link) -> bool:
    status, out, _err = await run(link, f"cd && cat {GUARD_DIR}/user-off 2>/dev/null")
    return status == 0 and out.strip() == "off"


async def install(link: Link, settings: GuardSettings, *, python: str = "python3") -> str:
    """Install and start (or update) the guard; returns what to tell the user.

    A guard the user turned off stays off. Raises GuardError when it cannot run here (no
    ``python3``, a folder it cannot write)."""
    if await _user_off(link):
        return "the idle guard is OFF on this instance (`nbterm guard on HOST` arms it)"
    status, _out, err = await run(link, f"command -v {shlex.quote(python)} >/dev/null")
    if status != 0:
        raise GuardError(f"the idle guard needs {python} on the remote: it is not installed")
    # written only when it changed: a running guard sees a new file and becomes it (the
    # signals it imports first, so that a guard that becomes the new one finds them)
    for source, name in (("signals.py", "nbterm_signals.py"), ("guard_script.py", "guard.py")):
        status, _out, err = await run(
            link, _in_guard_dir(f"cat > {name}.new"), input=script_text(source)
        )
        if status == 0:
            status, _out, err = await run(
                link,
                _in_guard_dir(
                    f"if cmp -s {name}.new {name}; then rm {name}.new; "
                    f"else mv {name}.new {name}; fi"
                ),
            )
        if status != 0:
            break
    if status != 0:
        raise GuardError(f"could not install the idle guard: {err.strip()[:200]}")
    status, _out, err = await run(
        link,
        _in_guard_dir("cat > config.json.tmp && mv config.json.tmp config.json && touch lease"),
        input=settings.as_json(armed=True),
    )
    if status == 0 and settings.laptop:  # this laptop's own rules, beside the others'
        own = f"rules/{settings.laptop}.json"
        status, _out, err = await run(
            link,
            _in_guard_dir(f"mkdir -p rules leases && cat > {own}.tmp && mv {own}.tmp {own}"),
            input=json.dumps(settings.rules()),
        )
    if status != 0:
        raise GuardError(f"could not configure the idle guard: {err.strip()[:200]}")
    start = (  # in a subshell of its own, every stream redirected: the channel can close
        f"(nohup setsid {shlex.quote(python)} guard.py config.json >>guard.log 2>&1 "
        "</dev/null &); echo started"
    )
    status, _out, err = await run(link, _in_guard_dir(start))
    if status != 0:
        raise GuardError(f"could not start the idle guard: {err.strip()[:200]}")
    running = await _until_running(link)
    rules = []
    if settings.idle_minutes is not None:
        rules.append(f"{settings.idle_minutes + settings.grace_minutes:g} idle minutes")
    if settings.max_hours is not None:
        rules.append(f"{settings.max_hours:g} h of uptime")
    said = (
        f"idle guard armed on the instance: with no nbterm attached for "
        f"{settings.lease_minutes:g} min, it powers off after {' or '.join(rules)}"
    )
    if not running:
        said += (
            f"; but its process has not started within {START_WAIT:g} s (see "
            f"~/{GUARD_DIR}/guard.log on the instance)"
        )
    if settings.power_off.startswith("sudo -n "):
        status, _out, _err = await run(link, "sudo -n true")
        if status != 0:
            said += (
                "; but sudo asks for a password here, so it cannot power off: see the "
                "README, 'The idle guard'"
            )
    return said


START_WAIT = 5.0
"""How long arming waits for the guard to say it runs (it writes its pid at once)."""


async def _until_running(link: Link) -> bool:
    """Whether the guard runs, once its own state says so: words about it come after it wrote
    its pid, never from the file of the guard before it."""
    deadline = asyncio.get_running_loop().time() + START_WAIT
    while True:
        state = await read_state(link)
        if state is not None and state.running:
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.2)


async def renew_lease(link: Link, laptop: str = "", by: str = "") -> None:
    """An nbterm is attached: the guard leaves the machine alone for ``lease_minutes``. Each
    nbterm renews a lease of its own (``leases/ID``, holding its name)."""
    command = f"cd && touch {GUARD_DIR}/lease 2>/dev/null"
    if laptop:
        command += (f" && mkdir -p {GUARD_DIR}/leases && printf %s {shlex.quote(by)} "
                    f"> {GUARD_DIR}/leases/{laptop}")  # fmt: skip
    await run(link, command + "; true", timeout=15)


STATE_LIMIT = 64 << 10
"""What is read of each of the guard's files (each is a few hundred bytes)."""


def _one_line(name: str) -> str:
    """Print the start of one of the guard's files as one line, however the remote wrote it."""
    return f"head -c {STATE_LIMIT + 1} {name} 2>/dev/null | tr -d '\\n'"


async def read_state(link: Link) -> GuardState | None:
    """The guard's own account of itself (None: no guard was ever installed here)."""
    command = (
        f"cd {GUARD_DIR} 2>/dev/null || exit 3; {_one_line('config.json')}; echo; "
        f"{_one_line('state.json')}; echo; head -c 16 user-off 2>/dev/null | tr -d '\\n'; echo; "
        "p=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' state.json 2>/dev/null); "
        '[ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q guard.py /proc/"$p"/cmdline '
        "2>/dev/null && echo alive || echo gone"
    )
    status, out, _err = await run(link, command, timeout=15)
    if status == 3:
        return None
    lines = out.splitlines()
    if len(lines) < 4:
        return None
    return parse_state(lines[0], lines[1], lines[2].strip() == "off", lines[-1] == "alive")


def _number(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and low <= number <= high else None


def _text(value: object) -> str:
    return value[:300] if isinstance(value, str) else ""


def parse_state(config_text: str, state_text: str, user_off: bool, alive: bool) -> GuardState:
    """The guard's files as data: anything malformed reads as unknown, never as an error."""
    loaded_config = load_object(config_text, "the guard's config", limit=STATE_LIMIT)
    loaded_state = load_object(state_text, "the guard's state", limit=STATE_LIMIT)
    config = {} if isinstance(loaded_config, Unusable) else loaded_config
    state = {} if isinstance(loaded_state, Unusable) else loaded_state
    armed = config.get("armed") is True and not user_off
    idle = _number(state.get("idle_seconds"), 0, 10**9)
    rules = state.get("rules")
    if not isinstance(rules, dict):
        rules = {}
    found = state.get("leases")
    if not isinstance(found, list):
        found = []
    leases = tuple(
        Lease(_text(item.get("id"))[:32], _text(item.get("by"))[:64], age)
        for item in found[:16]
        if isinstance(item, dict) and (age := _number(item.get("age"), 0, 10**9)) is not None
    )
    laptops = _number(rules.get("laptops"), 1, 64)
    last = state.get("last_stop")
    if not isinstance(last, dict):
        last = {}
    found = state.get("signals")
    signals = tuple(
        Signal(_text(item.get("signal"))[:32], _text(item.get("value"))[:80],
               item.get("busy") is True,
               _number(item.get("at"), 0, 10**11) or _number(item.get("since"), 0, 10**11))
        for item in (found[:16] if isinstance(found, list) else [])
        if isinstance(item, dict) and _text(item.get("signal"))
    )  # fmt: skip
    found = state.get("decisions")
    decisions = tuple(
        Decision(at, item.get("busy") is True, _text(item.get("reason"))[:200])
        for item in (found[-20:] if isinstance(found, list) else [])
        if isinstance(item, dict) and (at := _number(item.get("at"), 0, 10**11)) is not None
    )
    return GuardState(
        armed=armed,
        running=alive and armed,
        idle_minutes=idle / 60 if idle is not None else None,
        stop_at=_number(state.get("stop_at"), 0, 10**11),
        attached=state.get("attached") is True,
        powering_off=state.get("powering_off") is True,
        failed=_text(state.get("failed")),
        seen=_text(state.get("seen")),
        user_off=user_off,
        rules_by=_text(rules.get("by"))[:64],
        laptops=int(laptops) if laptops is not None else 1,
        lease_minutes=_number(rules.get("lease_minutes"), 0, 10**6),
        leases=leases,
        busy=state.get("busy") is True,
        reason=_text(state.get("reason")),
        extended_until=_number(state.get("extended_until"), 0, 10**11),
        last_stop_at=_number(last.get("at"), 0, 10**11),
        last_stop_why=_text(last.get("why"))[:200],
        idle_limit_minutes=_number(rules.get("idle_limit_minutes"), 0, 10**9),
        checked=_number(state.get("checked"), 0, 10**11),
        signals=signals,
        decisions=decisions,
    )


async def turn_off(link: Link) -> bool:
    """Disarm the guard and keep it off; True if one was installed. The running guard reads
    its config within one check and ends."""
    command = (
        f"cd {GUARD_DIR} 2>/dev/null || exit 3; echo off > user-off; "
        'sed \'s/"armed": *true/"armed": false/\' config.json > config.json.tmp && '
        "mv config.json.tmp config.json"
    )
    status, _out, err = await run(link, command)
    if status == 3:
        return False
    if status != 0:
        raise GuardError(f"could not turn the idle guard off: {err.strip()[:200]}")
    return True


EXTEND_LIMIT_HOURS = 7 * 24.0


async def extend(link: Link, until: float) -> bool:
    """``nbterm guard extend``: no idle stop before ``until`` (epoch seconds), by the guard or
    by an attached nbterm; False if no guard was ever installed here. Spending limits
    (``max_hours``, the daily budget) still apply."""
    status, _out, err = await run(
        link, f"cd {GUARD_DIR} 2>/dev/null || exit 3; printf %s {until:.0f} > extend"
    )
    if status == 3:
        return False
    if status != 0:
        raise GuardError(f"could not postpone the idle stop: {err.strip()[:200]}")
    return True


async def allow(link: Link) -> None:
    """``nbterm guard on``: the next ``up`` (or this one) may arm the guard again."""
    await run(link, f"cd && rm -f {GUARD_DIR}/user-off")
