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
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.locations import Paths
from nbterm.services.remote.events import TunnelHealth
from nbterm.services.remote.forward import ForwardMode
from nbterm.services.remote.ssh import target_for
from nbterm.services.remote.ssh_config import write_ssh_config
from tests.harness.remote import api_status, remote_config_text
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
