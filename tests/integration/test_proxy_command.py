"""``proxy_command`` (OpenSSH's ProxyCommand, the way AWS SSM is reached): nbterm's own SSH, the
cockpit's forwarder process and OpenSSH (rsync, `nbterm ssh`) all go through it, with the same
``%h %p`` tokens, and the host key is checked as for every host."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.remote.events import TunnelHealth
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.host_keys import KnownHosts
from nbterm.services.remote.ssh import (
    AuthFailedError,
    ConnectFailedError,
    SshTarget,
    connect,
    run,
    target_for,
)
from nbterm.services.remote.ssh_config import write_ssh_config
from tests.harness.remote import api_status, remote_config_text, trust_all
from tests.harness.sshd import SshServer
from tests.integration.test_remote import Recorder, make_session

pytestmark = pytest.mark.sshd

# A ProxyCommand of the test's own: connects to argv[1]:argv[2], pumps both ways, and notes
# each use (with the tokens as they arrived) in argv[3].
PROXY = """
import os, socket, sys, threading
with open(sys.argv[3], "a") as log:
    log.write(" ".join(sys.argv[1:3]) + "\\n")
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := conn.recv(65536):
    os.write(1, data)
"""


@pytest.fixture
def proxied(
    sshd: SshServer, write_config: Callable[[str], Path], paths: Paths
) -> tuple[Path, Path]:
    """The config's host ``box`` reached only through the proxy; returns (config, proxy log)."""
    folder = paths.config_file.parent
    folder.mkdir(parents=True, exist_ok=True)
    script, log = folder / "proxy script.py", folder / "proxy log.txt"
    script.write_text(PROXY)
    command = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %h %p {shlex.quote(str(log))}"
    )
    text = remote_config_text(sshd) + f"proxy_command = {json.dumps(command)}\n"
    return write_config(text), log


@pytest.mark.parametrize("forward", ["inline", "process"])
async def test_nbterm_reaches_the_host_through_its_proxy_command(
    proxied: tuple[Path, Path], paths: Paths, sshd: SshServer, forward: ForwardMode
) -> None:
    config_file, log = proxied
    config = load_config(config_file)
    assert target_for(config.hosts["box"], config).proxy_command is not None
    recorder = Recorder()
    session = make_session(config, paths, recorder, forward)
    try:
        result = await session.up()
        await recorder.wait_for(lambda e: isinstance(e, TunnelHealth) and e.state == "up", 15)
        await asyncio.to_thread(api_status, result.local_port, result.server.token)
    finally:
        await session.down()
    uses = log.read_text().splitlines()
    # the host key fetched, the session's link (and the forwarder's own): all through the proxy
    assert len(uses) >= (3 if forward == "process" else 2)
    assert set(uses) == {f"{sshd.host} {sshd.port}"}  # %h and %p replaced


def test_openssh_goes_through_the_same_proxy_command(
    proxied: tuple[Path, Path], paths: Paths, sshd: SshServer
) -> None:
    config_file, log = proxied
    config = load_config(config_file)
    from nbterm.services.remote.host_keys import KnownHosts

    KnownHosts(paths.known_hosts).add("box", sshd.host_key_pub)
    generated = write_ssh_config(config, paths)
    done = subprocess.run(
        ["ssh", "-F", str(generated), "box", "echo", "through"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "through"), done.stderr
    assert log.read_text().splitlines() == [f"{sshd.host} {sshd.port}"]
    subprocess.run(
        ["ssh", "-F", str(generated), "-O", "exit", "box"], capture_output=True, check=False
    )


# The same pump, with a standard error of its own kind: a warning before and during the
# session (the AWS CLI prints such), a closed one, or its refusal and nothing else.
STDERR_KINDS = {
    "chatty": "import sys\nsys.stderr.write('WARNING: this CLI is old\\n'); sys.stderr.flush()\n",
    "closed": "import os\nos.close(2)\n",
}


@pytest.mark.parametrize("kind", ["chatty", "closed"])
async def test_what_a_proxy_does_with_its_stderr_never_reaches_the_ssh_stream(
    sshd: SshServer, paths: Paths, tmp_path: Path, kind: str
) -> None:
    """asyncssh's own proxy_command read the proxy's stderr as the server's bytes: a proxy
    that closed it ended the connection at once ("Connection lost"), and a warning written
    mid-session went into the stream."""
    script = tmp_path / "proxy.py"
    pump = PROXY
    if kind == "chatty":  # once more after every chunk it relayed
        pump = PROXY.replace(
            "    os.write(1, data)",
            "    os.write(1, data)\n    " + STDERR_KINDS[kind].splitlines()[1],
        )
    script.write_text(STDERR_KINDS[kind] + pump)
    target = replace(
        _target(sshd),
        proxy_command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %h %p "
        f"{shlex.quote(str(tmp_path / 'log'))}",
    )
    link = await connect(target, KnownHosts(paths.known_hosts), trust_all)
    try:
        for _ in range(3):
            status, out, _err = await run(link, "echo ok")
            assert (status, out) == (0, "ok\n")
    finally:
        link.close()
        await link.wait_closed()
    proxy = link.proxy
    assert proxy is not None
    await asyncio.wait_for(proxy.process.wait(), 5)  # ended with the link, not left behind


async def test_a_proxy_that_fails_says_why_in_its_own_words_bounded_and_safe(
    sshd: SshServer, paths: Paths, tmp_path: Path
) -> None:
    """Before, the words were "disconnected: Connection lost"."""
    script = tmp_path / "refuse.py"
    script.write_text(
        "import sys\n"
        "sys.stderr.write('x' * 100000 + '\\n\\x1b]0;owned\\x07' + 'An error occurred "
        "(TargetNotConnected) when calling the StartSession operation: i-2 is not connected.\\n')\n"
        "sys.exit(254)\n"
    )
    target = replace(_target(sshd), proxy_command=f"{shlex.quote(sys.executable)} "
                     f"{shlex.quote(str(script))}")  # fmt: skip
    with pytest.raises(ConnectFailedError) as caught:
        await connect(target, KnownHosts(paths.known_hosts), trust_all)
    said = str(caught.value)
    assert "its proxy command (" in said and ") ended: " in said
    assert "(TargetNotConnected)" in said and "i-2 is not connected" in said
    assert "\x1b" not in said and "\x07" not in said  # data, never a terminal's command
    assert len(said) < 4096 + 200  # its last bytes, not all of them


def _target(sshd: SshServer) -> SshTarget:
    return SshTarget(name="box", address=sshd.host, port=sshd.port, alias="box",
                     user=sshd.user, identity_file=sshd.client_key,
                     connect_timeout=5)  # fmt: skip


def _indent(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.splitlines())


async def test_a_proxy_ends_with_its_link_children_and_all(
    sshd: SshServer, paths: Paths, tmp_path: Path
) -> None:
    """`aws ssm start-session` runs session-manager-plugin as a child of its own: ending the
    link ends the proxy's whole process group, not only the process nbterm started."""
    script, child = tmp_path / "proxy.py", tmp_path / "child.pid"
    script.write_text(PROXY)
    pump = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %h %p "
    target = replace(
        _target(sshd),
        proxy_command=f"sleep 300 & echo $! > {shlex.quote(str(child))}; exec {pump}"
        f"{shlex.quote(str(tmp_path / 'log'))}",
    )
    link = await connect(target, KnownHosts(paths.known_hosts), trust_all)
    assert (await run(link, "echo ok"))[1] == "ok\n"
    pid = int(child.read_text())
    assert _alive(pid)
    link.close()
    await link.wait_closed()
    deadline = asyncio.get_running_loop().time() + 5
    while _alive(pid) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert not _alive(pid), "the proxy's child outlived the link"


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that does not reap (PID 1 in a container)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


async def test_a_proxy_that_only_warned_is_not_blamed_for_a_refused_login(
    sshd: SshServer, paths: Paths, tmp_path: Path
) -> None:
    """The proxy printed a warning and did its job; the server refused the login: the words
    say the login, and add what the proxy said."""
    script = tmp_path / "proxy.py"
    script.write_text(STDERR_KINDS["chatty"] + PROXY)
    target = replace(
        _target(sshd),
        user="nobody-by-that-name",
        proxy_command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %h %p "
        f"{shlex.quote(str(tmp_path / 'log'))}",
    )
    with pytest.raises(AuthFailedError) as caught:
        await connect(target, KnownHosts(paths.known_hosts), trust_all)
    said = str(caught.value)
    assert "refused the login" in said, said
    assert said.endswith("said: WARNING: this CLI is old)"), said
