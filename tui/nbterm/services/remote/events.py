"""What the remote services report, as immutable events (for the CLI now and the TUI later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ConnectionState = Literal["connecting", "connected", "lost", "reconnecting", "down"]
TunnelState = Literal["connecting", "up", "degraded", "reconnecting", "down"]


@dataclass(frozen=True)
class RemoteEvent:
    host: str


@dataclass(frozen=True)
class ConnectionChanged(RemoteEvent):
    state: ConnectionState
    message: str = ""
    attempt: int = 0
    retry_in: float | None = None


@dataclass(frozen=True)
class HostKeyTrusted(RemoteEvent):
    alias: str
    key_type: str
    sha256: str


@dataclass(frozen=True)
class JupyterReady(RemoteEvent):
    remote_port: int
    pid: int
    started: bool
    """True: nbterm started it now. False: it was running already (kernels kept)."""
    root_dir: str = ""


@dataclass(frozen=True)
class TunnelOpened(RemoteEvent):
    local_port: int
    wanted_port: int
    remote_port: int
    url: str = field(repr=False)
    """The working URL, with the token: show it to the user, never log it."""

    @property
    def fell_back(self) -> bool:
        return self.local_port != self.wanted_port


@dataclass(frozen=True)
class TunnelHealth(RemoteEvent):
    state: TunnelState
    local_port: int
    latency_ms: float | None = None
    kernels: int | None = None
    connections: int | None = None
    last_activity: str | None = None
    reconnects: int = 0
    """The SSH connection's reconnects and the tunnel process's restarts, this session."""
    message: str = ""
    needs_password: bool = False
    """Jupyter takes only its password: kernels and activity cannot be read."""
    kernels_lost: bool = False
    """nbterm restarted a Jupyter that had kernels, and no kernel has run since."""


ForwardState = Literal["connecting", "up", "degraded", "no server", "reconnecting", "down"]


@dataclass(frozen=True)
class ForwardOpened(RemoteEvent):
    """One of the host's other ports listens on the laptop (a ``forwards`` entry, or one added
    for this session)."""

    name: str
    local_port: int
    wanted_port: int
    remote_port: int
    session_only: bool = False
    """Added for this session (``p`` in the cockpit), not from the config."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}/"

    @property
    def fell_back(self) -> bool:
        return self.local_port != self.wanted_port


@dataclass(frozen=True)
class ForwardHealth(RemoteEvent):
    name: str
    state: ForwardState
    local_port: int
    latency_ms: float | None = None
    answer: str = ""
    """What its server answered the probe: ``HTTP 200``, ``TCP``, ``open, silent``."""
    message: str = ""


@dataclass(frozen=True)
class ForwardClosed(RemoteEvent):
    name: str
    session_only: bool = False


@dataclass(frozen=True)
class SpotInterruption(RemoteEvent):
    """AWS gave the two-minute notice: nbterm syncs at once."""

    action: str
    time: str


@dataclass(frozen=True)
class IdleWarning(RemoteEvent):
    idle_minutes: float
    stop_in_minutes: float
    reason: str = ""
    """What each signal saw ("kernels 1 idle, GPU 0 0% (...), no SSH session"): the remote's
    words in part, made safe where shown."""


@dataclass(frozen=True)
class IdleStopping(RemoteEvent):
    """Idle past idle_stop_minutes: a final sync, then the instance is stopped."""

    idle_minutes: float
    reason: str = ""


@dataclass(frozen=True)
class Notice(RemoteEvent):
    """Something the user should know that is not an error of the session itself."""

    message: str


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``nvidia-smi`` reported it."""

    index: int
    util: int
    """Utilisation, percent."""
    used: int
    """Memory used, MiB."""
    total: int


@dataclass(frozen=True)
class GpuSample(RemoteEvent):
    """Every GPU of a host at one moment (services/remote/gpu.py)."""

    gpus: tuple[Gpu, ...]


@dataclass(frozen=True)
class Signal:
    """What one signal saw at the guard's last check (:mod:`signals`)."""

    name: str
    """"kernels", "GPU 1", "CPU", "SSH pts/1", "terminal 1"..."""
    value: str
    busy: bool
    since: float | None
    """Since when it has said so (its last activity, for a terminal or an SSH session)."""


@dataclass(frozen=True)
class Decision:
    """One of the guard's last decisions: busy to idle and back, a power-off."""

    at: float
    busy: bool
    reason: str


@dataclass(frozen=True)
class GuardDecisions(RemoteEvent):
    """The idle guard's last decisions, as read at an attach (for the journal: what it decided
    while no nbterm was there, each at its own time)."""

    decisions: tuple[Decision, ...]


@dataclass(frozen=True)
class GuardReport(RemoteEvent):
    """The idle guard on the instance, as it last described itself (read with each lease)."""

    armed: bool
    running: bool
    idle_minutes: float | None = None
    stop_at: float | None = None
    """When it will power off if nothing happens and no nbterm attaches (epoch seconds)."""
    attached: bool = False
    failed: str = ""
    """Why its last power-off did not happen (the remote's words: made safe where shown)."""
    user_off: bool = False
    reason: str = ""
    """What its signals saw at its last check ("busy: GPU 1 97%", "idle: ..."): the remote's
    words, made safe where shown."""
    extended_until: float | None = None
    """``nbterm guard extend`` postponed its idle stop until then (epoch seconds)."""
    idle_limit_minutes: float | None = None
    """How long idle it may be (its rules, with their grace); None: idleness stops nothing."""
    active_at: float | None = None
    """The last moment any of its signals saw activity (epoch seconds, the instance's clock)."""


@dataclass(frozen=True)
class LimitWarning(RemoteEvent):
    """A spending limit (``max_hours``, the daily budget) will stop the instance soon."""

    why: str
    stop_in_minutes: float | None = None
    """None: no stop is scheduled yet (the budget's 80% warning)."""


@dataclass(frozen=True)
class LimitStopping(RemoteEvent):
    """A spending limit is reached: a final sync, then the instance is stopped."""

    why: str
