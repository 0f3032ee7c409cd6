"""How a notification reaches a person on this laptop, and sending it.

nbterm runs on the laptop, so it need not smuggle a notification through tmux: where a desktop
session is there, the laptop's own notifier shows it (``notify-send`` on Linux, ``osascript`` on
macOS), whichever tmux window or app the person is in. Inside tmux, ``display-message`` puts
it in the status line of the attached client too. OSC 9/777 to the terminal is used only
outside tmux (Debian 12's tmux 3.3a drops them from a pane that is not visible, even with
``allow-passthrough on``).

Every text is the remote's or built from it: made inert for each consumer (no control bytes, no
tmux ``#`` formats, which can run commands, no notification-server markup) and bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from nbterm.safe_text import shown

Route = Literal["notify-send", "osascript", "tmux", "terminal"]
ROUTES: tuple[Route, ...] = ("notify-send", "osascript", "tmux", "terminal")
MAX_TEXT = 200


@dataclass(frozen=True)
class Delivery:
    routes: tuple[Route, ...]
    """Where each notification goes, in order (empty: nowhere but the bell)."""
    why: str
    """In words, for ``config check``: which path is live and why, or what would make one."""


def _desktop_session(env: Mapping[str, str]) -> str | None:
    """The variable that shows a desktop session, or None (nbterm used over SSH has none)."""
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return None
    for name in ("WAYLAND_DISPLAY", "DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        if env.get(name):
            return name
    return None


def choose(
    setting: str,
    *,
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> Delivery:
    """``[notify] desktop_via``: ``auto`` picks the laptop's notifier where a desktop session
    is there, plus tmux's status line inside tmux, else the terminal's OSC 9/777 (outside tmux
    only); a named route is used as asked."""
    env = os.environ if env is None else env
    in_tmux = bool(env.get("TMUX"))
    if setting != "auto":
        route: Route = next((r for r in ROUTES if r == setting), "terminal")
        return Delivery((route,), f"{route}, as [notify] desktop_via asks")
    routes: list[Route] = []
    session = _desktop_session(env)
    system: Route = "osascript" if platform == "darwin" else "notify-send"
    why = []
    if session is not None and which(system):
        routes.append(system)
        why.append(f"{system} (a desktop session: {session})")
    elif session is None:
        why.append(f"no desktop session here, so not {system}")
    else:
        fix = " (install libnotify-bin)" if system == "notify-send" else ""
        why.append(f"{system} is not installed{fix}")
    if in_tmux:
        routes.append("tmux")
        why.append("tmux's status line (display-message)")
    elif not routes:
        routes.append("terminal")
        why.append("the terminal (OSC 9 and 777; terminals without them ignore them)")
    return Delivery(tuple(routes), "; ".join(why))


def _plain(text: str) -> str:
    return shown(text)[:MAX_TEXT]


def command(route: Route, title: str, body: str) -> list[str] | None:
    """The argument list that shows one notification (None: the terminal route writes bytes).
    Texts go as arguments, never through a shell or into a script."""
    title, body = _plain(title), _plain(body)
    if route == "notify-send":
        markup = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return ["notify-send", "--app-name=nbterm", "--", title, markup]
    if route == "osascript":
        shown_as = "display notification (item 2 of argv) with title (item 1 of argv)"
        return ["osascript", "-e", f"on run argv\n{shown_as}\nend run", title, body]
    if route == "tmux":  # `#` starts a format there (`#(cmd)` runs a command): doubled
        message = f"{title}: {body}".replace("#", "##")
        return ["tmux", "display-message", "-d", "8000", message]
    return None


def terminal_sequences(title: str, body: str, *, in_tmux: bool) -> str:
    """OSC 9 and OSC 777 for one notification, wrapped for tmux's passthrough when inside it."""
    title, body = _plain(title).replace(";", ","), _plain(body).replace(";", ",")
    sequences = [f"\x1b]9;{title}: {body}\x07", f"\x1b]777;notify;{title};{body}\x07"]
    if in_tmux:
        sequences = ["\x1bPtmux;" + s.replace("\x1b", "\x1b\x1b") + "\x1b\\" for s in sequences]
    return "".join(sequences)


def send(argv: list[str]) -> bool:
    """Start the notifier and do not wait for it (a slow notification server must never hold
    the cockpit); False if it could not be started."""
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError:
        return False
    threading.Thread(target=process.wait, name="notifier", daemon=True).start()  # reaped
    return True


# --- the clipboard -------------------------------------------------------------------------------

Copier = Literal["pbcopy", "wl-copy", "xclip", "xsel"]
_COPY_ARGS: dict[Copier, list[str]] = {
    "pbcopy": ["pbcopy"],
    "wl-copy": ["wl-copy"],
    "xclip": ["xclip", "-selection", "clipboard", "-in"],
    "xsel": ["xsel", "--clipboard", "--input"],
}


def copier(
    *,
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> Copier | None:
    """The laptop's clipboard tool for this desktop session, or None."""
    env = os.environ if env is None else env
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return None
    order: list[Copier] = []
    if platform == "darwin":
        order = ["pbcopy"]
    else:
        order += ["wl-copy"] if env.get("WAYLAND_DISPLAY") else []
        order += ["xclip", "xsel"] if env.get("DISPLAY") else []
    return next((tool for tool in order if which(tool)), None)


def copy_with(tool: Copier, text: str, timeout: float = 3.0) -> bool:
    """Copy ``text`` with the laptop's tool, through its standard input (a token never goes on
    a command line); True only when the tool said it did."""
    try:
        done = subprocess.run(
            _COPY_ARGS[tool], input=text.encode(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def tmux_set_clipboard(env: Mapping[str, str] | None = None) -> str | None:
    """tmux's ``set-clipboard`` for the server nbterm runs in (None: not in tmux, or unknown).
    Only ``on`` takes an application's OSC 52 (``external``, the default, ignores it)."""
    env = os.environ if env is None else env
    if not env.get("TMUX"):
        return None
    try:
        done = subprocess.run(
            ["tmux", "show-options", "-gv", "set-clipboard"], capture_output=True, text=True,
            timeout=3, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@dataclass(frozen=True)
class Copy:
    """How ``c`` copies: with a tool, with OSC 52 (``osc52``), and the words to say after."""

    tool: Copier | None
    osc52: bool
    words: str


def plan_copy(what: str, *, tool: Copier | None, in_tmux: bool, set_clipboard: str | None) -> Copy:
    """What ``c`` does and says, from what was just asked of this laptop: "copied" only where
    it will be, else how to make it work (the caller shows the URL to select by hand)."""
    if tool is not None:
        return Copy(tool, False, f"{what} copied ({tool})")
    if in_tmux and set_clipboard == "on":
        return Copy(None, True, f"{what} copied to tmux's buffer (and to your terminal's "
                                "clipboard where it allows OSC 52)")  # fmt: skip
    if in_tmux:
        return Copy(None, False, (
            f"{what} NOT copied: tmux's set-clipboard is {set_clipboard or 'unknown'} here, "
            "which keeps programs from the clipboard (`set -g set-clipboard on` in "
            "~/.tmux.conf lets nbterm in); select it by hand"
        ))  # fmt: skip
    return Copy(None, True, f"asked your terminal to copy the {what} (OSC 52; a terminal that "
                            "does not allow it copies nothing)")  # fmt: skip
