"""`nbterm status` beside a cockpit that holds the tunnel, in real tmux on the loopback host.

Before, status read only `nbterm up`'s records and said "no tunnel" while the cockpit's tunnel
was open. The cockpit now keeps a record of its own kind (never signalled by `down`); status
says whose tunnel it is and whether its port takes a connection now. After `d`, and after the
cockpit is killed -9 (its record left behind), status says "no tunnel" again.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sys
import time

import pytest

from tests.harness.tmux import TmuxScreen
from tests.harness.world import World, world

__all__ = ["world"]  # the fixture

pytestmark = [pytest.mark.sshd, pytest.mark.e2e]

HELD = r"  tunnel http://127\.0\.0\.1:(\d+)/ \(the cockpit, pid (\d+); listening\)"


def _box_tunnel_line(world: World) -> str:
    done = world.nbterm("status", timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("box  [")))
    return next(line for line in lines[start:] if line.startswith("  tunnel") or
                line == "  no tunnel")  # fmt: skip


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_status_says_the_cockpit_holds_the_tunnel_and_not_once_it_is_gone(
    world: World,
) -> None:
    world.config()
    screen = TmuxScreen(f"{shlex.quote(sys.executable)} -m nbterm", width=120, height=36)
    screen.start()
    cockpit_pid = 0
    try:
        screen.wait_for("Sync log", timeout=30)
        assert _box_tunnel_line(world) == "  no tunnel"
        screen.send("u")
        screen.wait_for("box: up; press o to open", timeout=60)
        line = _box_tunnel_line(world)
        held = re.fullmatch(HELD, line)
        assert held, line
        port, cockpit_pid = int(held.group(1)), int(held.group(2))
        with open(f"/proc/{cockpit_pid}/cmdline", "rb") as handle:
            assert b"nbterm" in handle.read()  # the cockpit's own process

        screen.send("d")
        screen.wait_for("tunnel closed", timeout=60)
        assert _box_tunnel_line(world) == "  no tunnel"

        screen.send("u")  # (the Sync log still shows the first "up": status is asked until)
        deadline = time.monotonic() + 60
        while not (held := re.fullmatch(HELD, _box_tunnel_line(world))):
            assert time.monotonic() < deadline, screen.capture()
            time.sleep(0.5)
        assert int(held.group(2)) == cockpit_pid
        port = int(held.group(1))
        os.kill(cockpit_pid, signal.SIGKILL)  # the record stays behind; its pid is gone
        deadline = time.monotonic() + 15
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port)  # the forwarder went with its cockpit
        assert _box_tunnel_line(world) == "  no tunnel"
    finally:
        if cockpit_pid:
            try:
                os.kill(cockpit_pid, 0)
            except ProcessLookupError:
                pass
            else:
                screen.send("q")
                time.sleep(2)
        screen.close()
