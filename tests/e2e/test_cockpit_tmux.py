"""A person's whole routine, in real tmux: launch, up, open the URL, save, see it synced,
terminate with the typed name; the final sync happened and moto says terminated."""

from __future__ import annotations

import json
import shlex
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from nbterm.config import load_config
from nbterm.services.cloud.ec2 import HOST_TAG, Ec2
from tests.harness.moto_ec2 import MotoEc2
from tests.harness.remote import (
    api_status,
    remote_config_text,
    remote_shell,
    sync_rule,
)
from tests.harness.sshd import SshServer
from tests.harness.tmux import TmuxScreen

pytestmark = [pytest.mark.e2e, pytest.mark.sshd, pytest.mark.moto]


def notebook(text: str) -> str:
    return json.dumps({"cells": [{"cell_type": "raw", "metadata": {}, "source": text}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})  # fmt: skip


def test_launch_up_sync_terminate_as_a_person_does(
    moto_ec2: MotoEc2, sshd: SshServer, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = f"nbterm-tmux-{uuid.uuid4().hex[:8]}"
    local = tmp_path / "notebooks"
    base = remote_config_text(sshd, local_port=36157).split("[hosts.box]")[0]
    path = write_config(
        f'[aws]\nregion = "us-east-1"\nendpoint_url = "{moto_ec2.endpoint_url}"\n'
        "console_key_wait = 1\n" + base + "[hosts.gpu]\n"
        'instance = "nb-gpu"\ntemplate = "gpu"\naddress = "127.0.0.1"\n'
        f'port = {sshd.port}\nuser = "{sshd.user}"\nidentity_file = "{sshd.client_key}"\n'
        '[templates.gpu]\nami = "ami-0abcdef1234567890"\ninstance_type = "g5.xlarge"\nspot = true\n'
        + sync_rule(folder, local, host="gpu")
    )
    config = load_config(path)
    remote_shell(sshd, f"mkdir -p {folder}")
    screen = TmuxScreen(f"{shlex.quote(sys.executable)} -m nbterm", width=120, height=36)
    try:
        screen.start()
        screen.tmux("set-option", "-g", "set-clipboard", "on")  # OSC 52 lands in a tmux buffer
        screen.wait_for("Instances", "gpu", "g5.xlarge", "u Up")

        screen.send("l")
        screen.wait_for("Launch an instance", "for host gpu")
        screen.send("Enter")  # the launch goes on to its up: its guard is armed at once
        screen.wait_for("bringing it up", timeout=30)
        screen.send("u")  # a second u never restarts (cancels) the up that runs
        screen.wait_for("New host key for gpu", timeout=30)
        screen.send("y")
        screen.wait_for("gpu: up; press o to open", "gpu is already coming up", timeout=60)

        screen.send("c")
        deadline = time.monotonic() + 10
        url = ""
        while "token=" not in url and time.monotonic() < deadline:
            url = screen.tmux("show-buffer").stdout.strip()
            time.sleep(0.1)
        parsed = urllib.parse.urlparse(url)
        assert parsed.hostname == "127.0.0.1"
        assert parsed.port is not None
        token = urllib.parse.parse_qs(parsed.query)["token"][0]
        assert "kernels" in api_status(parsed.port, token)

        remote_shell(sshd, f"cat > {folder}/seen.ipynb", notebook("first").encode())
        screen.wait_for("received seen.ipynb", timeout=15)
        assert (local / "seen.ipynb").read_text() == notebook("first")

        remote_shell(sshd, f"cat > {folder}/last.ipynb", notebook("just before").encode())
        screen.send("t")
        screen.wait_for("Terminate gpu?", "Type gpu and press Enter")
        screen.send("g", "p", "u", "Enter")
        deadline = time.monotonic() + 60
        ec2 = Ec2(config.aws)
        states: list[str] = []
        while time.monotonic() < deadline:
            raw = ec2.client.describe_instances(
                Filters=[{"Name": f"tag:{HOST_TAG}", "Values": ["gpu"]}]
            )["Reservations"]
            states = [i["State"]["Name"] for r in raw for i in r["Instances"]]
            if states == ["terminated"]:
                break
            time.sleep(0.2)
        assert states == ["terminated"]
        assert (local / "last.ipynb").read_text() == notebook("just before")  # the final sync
        screen.wait_for("terminated")
        screen.send("q")
    finally:
        screen.close()
        remote_shell(sshd, f"rm -rf {folder}")
