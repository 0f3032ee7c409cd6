"""What the remote prints is data: bounded in size, bytes until shown.

A remote that answers a command with gigabytes (a runtime file, a log line that never ends, a
state file) must not grow the laptop's memory; a byte that is not UTF-8 (a Latin-1 shell
greeting, a file name in a runtime file) must not end the SSH connection, and is shown as
``\\xNN``. Each case runs on the real sshd; the greeting is written into the dedicated test
user's ``~/.bashrc`` (never into a developer's own), and put back after.

Invariants: ``nbterm status`` reading a 3 GiB file peaks under 200 MiB (57 MiB measured; it
peaked at 1260 MiB for a 400 MiB file before: the whole answer was kept, three times over); a
command's answer over its limit
is cut, said once, and the connection stays usable; one byte that is not UTF-8 never costs the
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from nbterm.safe_text import shown
from nbterm.services.remote import install, jupyter
from nbterm.services.remote.output import OUTPUT_LIMIT
from nbterm.services.remote.ssh import Link, run
from tests.harness.remote import SESSION, own_runtime, remote_shell
from tests.harness.sshd import TEST_USER, SshServer
from tests.harness.world import World

pytestmark = pytest.mark.sshd

HUGE = os.environ.get("NBTERM_HOSTILE_HUGE", "3G")
"""The size of the huge answers (``truncate -s`` and ``head -c`` syntax)."""
MIB = 1 << 20


def _high_water(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss(argv: list[str], timeout: float = 120) -> tuple[int, str, int]:
    """Run ``argv``; its exit status, its output and its peak resident memory in bytes.

    The peak is the process's own VmHWM, read every 10 ms while it runs: not ``wait4``'s
    ``ru_maxrss``, which on Linux starts from the parent's peak at fork (pytest's, hundreds of
    MiB late in the suite) and so measures the wrong process."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    output, peak = b"", 0
    while proc.poll() is None:
        peak = max(peak, _high_water(proc.pid) or 0)
        with contextlib.suppress(BlockingIOError, TypeError):
            output += proc.stdout.read() or b""
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{argv} did not end within {timeout:g}s: {output[-2000:]!r}")
        time.sleep(0.01)
    with contextlib.suppress(BlockingIOError, TypeError):
        output += proc.stdout.read() or b""
    assert peak > 0, "the process's memory was never read"
    return proc.returncode, output.decode(errors="replace"), peak


def test_status_reading_a_runtime_file_of_gigabytes_keeps_memory_flat(world: World) -> None:
    """A jpserver-*.json of several GB (sparse on the remote's disk) in the runtime folder that
    ``nbterm status`` reads."""
    world.config()
    folder = jupyter.runtime_dir(world.config().hosts["box"].jupyter)
    remote_shell(world.sshd, f"mkdir -p {folder} && truncate -s {HUGE} {folder}/jpserver-1.json")
    try:
        status, output, peak = peak_rss([sys.executable, "-m", "nbterm", "status"])
    finally:
        remote_shell(world.sshd, f"rm -f {folder}/jpserver-1.json")
    assert "box" in output, output
    assert "Traceback" not in output, output
    assert peak < 200 * MIB, f"peak RSS {peak / MIB:.0f} MiB reading a {HUGE} runtime file"
    assert status in (0, 1), output


@contextlib.asynccontextmanager
async def linked(sshd: SshServer, tmp_path: Path, name: str) -> AsyncIterator[Link]:
    async with own_runtime(sshd, tmp_path, name) as (link, _settings, _folder):
        yield link


async def test_an_answer_over_its_limit_is_cut_said_once_and_the_link_lives(
    sshd: SshServer, tmp_path: Path
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    async with linked(sshd, tmp_path, "nbterm-huge") as link:
        started = time.monotonic()
        status, out, err = await run(link, f"head -c {HUGE} /dev/zero")
        took = time.monotonic() - started
        assert (status, out) == (255, "")
        assert err == "nbterm stopped reading: the remote's answer was over 1 MiB"
        assert took < 10, f"{took:.1f}s: the rest was read after all"
        # the same connection still answers, and a smaller limit is a limit too
        assert await run(link, "echo ok") == (0, "ok\n", "")
        status, _out, err = await run(link, "head -c 5000 /dev/zero", limit=4096)
        assert status == 255 and "over 4 KiB" in err
        # stderr is kept up to its own bound, read to the end (the command is not blocked)
        status, out, err = await run(link, "head -c 5000000 /dev/zero >&2; echo done")
        assert (status, out) == (0, "done\n")
        assert 0 < len(err) <= 64 * 1024
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < 100 * MIB, f"the test process grew by {grown / MIB:.0f} MiB"
    assert OUTPUT_LIMIT == MIB


@contextlib.contextmanager
def greeting(sshd: SshServer, text: bytes) -> Iterator[None]:
    """``text`` printed by the remote user's ~/.bashrc for every command (bash reads it for a
    command run by sshd), put back as it was after."""
    if sshd.user != TEST_USER:
        pytest.skip("writes the remote user's ~/.bashrc: only done to the dedicated test user")
    bashrc = sshd.home / ".bashrc"
    old = bashrc.read_bytes() if bashrc.exists() else None
    line = b"printf '%s\\n' '" + text + b"'\n"
    bashrc.write_bytes(line + (old or b""))
    try:
        yield
    finally:
        if old is None:
            bashrc.unlink()
        else:
            bashrc.write_bytes(old)


async def test_a_greeting_that_is_not_utf8_never_ends_the_connection(
    sshd: SshServer, tmp_path: Path
) -> None:
    with greeting(sshd, b"Willkommen, gr\xfc\xdf Gott"):
        async with own_runtime(sshd, tmp_path, "nbterm-latin1") as (link, settings, _folder):
            status, out, _err = await run(link, "echo ok")
            assert status == 0
            assert out.endswith("ok\n")
            assert "gr\\xfc\\xdf Gott" in shown(out)
            assert not link.is_closed
            # the whole start of Jupyter works through it (preflight, start, discovery)
            try:
                server = await jupyter.ensure(link, settings, token="t0ken")
                assert server.token == "t0ken"
                found = await jupyter.discover(link, settings)
                assert found is not None and (found.pid, found.port) == (server.pid, server.port)
            finally:
                await jupyter.stop(link, settings)


async def test_status_says_the_truth_through_a_greeting_that_is_not_utf8(
    world: World, tmp_path: Path
) -> None:
    """With Jupyter running, ``nbterm status`` said "jupyter: not running" through a Latin-1
    greeting (the connection had ended on the byte)."""
    world.config()
    async with own_runtime(world.sshd, tmp_path, SESSION) as (link, settings, _folder):
        try:
            server = await jupyter.ensure(link, settings, token="t0ken")
            with greeting(world.sshd, b"caf\xe9"):
                done = await asyncio.to_thread(world.nbterm, "status")
        finally:
            await jupyter.stop(link, settings)
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said
    assert "dropped" not in said and "not running" not in said, said
    assert f"jupyter: running (pid {server.pid}, port {server.port}," in said, said


async def test_a_runtime_file_with_bytes_that_are_not_utf8_is_read(
    sshd: SshServer, tmp_path: Path
) -> None:
    async with own_runtime(sshd, tmp_path, "nbterm-bytes") as (link, settings, folder):
        _s, out, _e = await run(
            link, f"{sshd.remote_python} -c 'import time; time.sleep(60)' --ip=127.0.0.1 "
                  ">/dev/null 2>&1 & echo $!"
        )  # fmt: skip
        pid = int(out)
        try:
            info = json.dumps({"port": 18990, "pid": pid, "token": "x", "root_dir": "/home/@"})
            raw = info.encode().replace(b"@", b"caf\xe9")
            remote_shell(sshd, f"mkdir -p {folder} && cat > {folder}/jpserver-{pid}.json", raw)
            found = await jupyter.discover(link, settings)
            assert found is not None
            assert shown(found.root_dir) == "/home/caf\\xe9"
        finally:
            await run(link, f"kill {pid} 2>/dev/null; true")


async def test_a_log_line_that_never_ends_is_read_to_a_bound(
    sshd: SshServer, tmp_path: Path
) -> None:
    """A kernel writing progress without newlines into Jupyter's log: the tail nbterm quotes
    when Jupyter fails stays small."""
    async with own_runtime(sshd, tmp_path, "nbterm-longlog") as (link, settings, _folder):
        log = f"{jupyter.REMOTE_DIR}/{settings.tmux_session}.log"
        await run(link, f"cd && mkdir -p {jupyter.REMOTE_DIR} && head -c 50M /dev/zero "
                        f"| tr '\\0' x > {log}.tmp 2>/dev/null; mv {log}.tmp {log}")  # fmt: skip
        try:
            tail = await jupyter.log_tail(link, settings)
            assert 0 < len(tail) <= 64 * 1024
        finally:
            await run(link, f"cd && rm -f {log}")


async def test_pips_lines_are_bounded_and_shown_safely(sshd: SshServer, tmp_path: Path) -> None:
    notes: list[str] = []
    async with linked(sshd, tmp_path, "nbterm-pip") as link:
        await install._stream(
            link,
            "printf 'Collecting caf\\351\\n'; head -c 5000000 /dev/zero | tr '\\0' x; echo; "
            "printf 'Successfully installed \\033]52;c;eA==\\007x\\n'",
            notes.append,
        )
    assert notes[0] == "Collecting caf\\xe9"
    assert notes[-1] == "Successfully installed \\e]52;c;eA==\\x07x"
    assert all(len(note) <= 200 for note in notes)
