"""How a notification reaches a person (services/desktop.py): which path ``auto`` takes where,
and that the words, which carry the remote's text, stay words for each consumer.

Before: inside tmux the only desktop path was OSC 9/777 through passthrough, which Debian 12's
tmux 3.3a drops from a hidden pane (0 of 2 arrived); no notifier of the laptop was ever used.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from nbterm.services import desktop
from tests.harness.tmux import TmuxScreen

LINUX_DESKTOP = {"DISPLAY": ":0", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}


def _which(*present: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("env", "platform", "present", "routes"),
    [
        (LINUX_DESKTOP, "linux", ("notify-send",), ("notify-send",)),
        (LINUX_DESKTOP | {"TMUX": "/tmp/tmux-1000/default,1,0"}, "linux", ("notify-send",),
         ("notify-send", "tmux")),
        ({"TMUX": "x"}, "linux", ("notify-send",), ("tmux",)),  # no desktop session
        (LINUX_DESKTOP | {"SSH_CONNECTION": "1 2 3 4"}, "linux", ("notify-send",), ("terminal",)),
        (LINUX_DESKTOP, "linux", (), ("terminal",)),  # no libnotify: the terminal's OSC
        ({"DISPLAY": "/private/tmp/launchd/org.xquartz"}, "darwin", ("osascript",),
         ("osascript",)),
        ({}, "linux", ("notify-send",), ("terminal",)),
    ],
)  # fmt: skip
def test_auto_takes_the_laptops_notifier_where_a_desktop_session_is_there(
    env: dict[str, str], platform: str, present: tuple[str, ...], routes: tuple[str, ...]
) -> None:
    chosen = desktop.choose("auto", env=env, platform=platform, which=_which(*present))
    assert chosen.routes == routes, chosen.why
    assert chosen.why


def test_config_check_says_what_would_make_the_notifier_work() -> None:
    chosen = desktop.choose("auto", env=LINUX_DESKTOP, platform="linux", which=_which())
    assert "notify-send is not installed (install libnotify-bin)" in chosen.why


def test_a_named_route_is_taken_as_asked() -> None:
    assert desktop.choose("tmux", env={}, which=_which()).routes == ("tmux",)


def test_the_words_go_as_arguments_made_inert_for_each_notifier() -> None:
    hostile = "a.ipynb\x1b]52;c;ZXZpbA==\x07 <b>&amp; $(rm -rf ~) `id`"
    notify = desktop.command("notify-send", "nbterm", hostile)
    assert notify is not None and notify[:3] == ["notify-send", "--app-name=nbterm", "--"]
    assert "\x1b" not in notify[-1] and "\x07" not in notify[-1]
    assert "&lt;b&gt;&amp;amp;" in notify[-1]  # the server's markup sees text
    mac = desktop.command("osascript", "nbterm", hostile)
    assert mac is not None and mac[-1].startswith("a.ipynb") and "$(rm" in mac[-1]
    assert "a.ipynb" not in mac[2]  # the script holds no text: it reads its arguments


def test_tmux_formats_in_a_remote_name_are_shown_never_run(tmp_path: Path) -> None:
    """`#(cmd)` in a display-message runs cmd: a notebook named so must only be shown."""
    marker = tmp_path / "ran"
    name = f"#(touch {shlex.quote(str(marker))}) #{{pane_id}}.ipynb"
    argv = desktop.command("tmux", "nbterm", f"{name}: sync failed")
    assert argv is not None
    screen = TmuxScreen("sleep 30")
    screen.start()
    try:
        printed = screen.tmux(*argv[1:2], "-p", *argv[-1:])  # display-message -p MESSAGE
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout.strip() == f"nbterm: {name}: sync failed"
        assert not marker.exists()
    finally:
        screen.close()


@pytest.mark.parametrize(
    ("tool", "in_tmux", "set_clipboard", "osc52", "says"),
    [
        ("xclip", True, "external", False, "copied (xclip)"),
        (None, True, "on", True, "copied to tmux's buffer"),
        (None, True, "external", False, "NOT copied: tmux's set-clipboard is external"),
        (None, False, None, True, "asked your terminal to copy"),
    ],
)
def test_c_claims_a_copy_only_where_one_happens(
    tool: desktop.Copier | None, in_tmux: bool, set_clipboard: str | None, osc52: bool, says: str
) -> None:
    plan = desktop.plan_copy("URL", tool=tool, in_tmux=in_tmux, set_clipboard=set_clipboard)
    assert plan.osc52 is osc52
    assert says in plan.words


def test_the_clipboard_tool_follows_the_desktop_session() -> None:
    every = _which("pbcopy", "wl-copy", "xclip", "xsel")
    assert desktop.copier(env={}, platform="darwin", which=every) == "pbcopy"
    assert desktop.copier(env={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux",
                          which=every) == "wl-copy"  # fmt: skip
    assert desktop.copier(env={"DISPLAY": ":0"}, platform="linux", which=_which("xsel")) == "xsel"
    over_ssh = {"DISPLAY": ":0", "SSH_TTY": "/dev/pts/3"}  # the laptop's clipboard is elsewhere
    assert desktop.copier(env=over_ssh, platform="linux", which=every) is None
