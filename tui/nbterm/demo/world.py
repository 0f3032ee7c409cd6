"""The demo's world: moto's EC2, an SSH server playing the instances, Jupyter, a config.

Everything listens on 127.0.0.1 and lives in one temporary folder; ``close()`` ends every
process it started (by pid) and removes the folder. The app then runs with the real services,
the same code paths as with AWS: only ``endpoint_url`` and each host's ``address`` point here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

import asyncssh

from nbterm.demo.ssh_server import DemoSshServer, shell_env
from nbterm.files import write_private
from nbterm.locations import ensure_private_dir, resolve_paths
from nbterm.services.cloud.spending import WARN_AT
from nbterm.services.journal import Journal

GPU_AMI = "ami-0abcdef1234567890"
GPU_SPOT_PRICE = 0.4213
"""The demo's own price of a g5.xlarge spot hour (near us-east-1's; moto's is $0.00001)."""
DAILY_BUDGET = 5.0
WARN_AFTER = 20.0
"""Seconds after the demo's gpu instance started when today's spending reaches 80% of the daily
budget: the seeded earlier run is priced for it, so the warning comes at the cockpit's first
refresh after that, well within a minute of the start."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _notebook(title: str, lines: list[str]) -> str:
    cells: list[dict[str, object]] = [
        {"cell_type": "markdown", "metadata": {}, "source": f"# {title}"}
    ]
    cells += [
        {
            "cell_type": "code",
            "metadata": {},
            "source": line,
            "outputs": [],
            "execution_count": None,
        }
        for line in lines
    ]
    return json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1
    )


class DemoWorld:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nbterm-demo-"))
        self.root.chmod(0o700)
        self.home = self.root / "remote-home"
        self.config_file = self.root / "config.toml"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._moto: Any = None
        self._moto_port = 0
        self._ssh: DemoSshServer | None = None

    # --- start ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.home.mkdir()
        (self.root / "tmux").mkdir(mode=0o700)
        self._seed_notebooks()
        key = asyncssh.generate_private_key("ssh-ed25519")
        identity = self.root / "demo-key"
        identity.write_bytes(key.export_private_key())
        identity.chmod(0o600)
        public = key.export_public_key("openssh").decode()
        env = shell_env(self.home, [str(Path(sys.executable).parent)])
        self._ssh = DemoSshServer(self.home, env, public)
        self._start_loop()
        port = self._call(self._ssh.start())
        endpoint = self._start_moto()
        gpu = self._seed_ec2(endpoint)
        self._write_config(endpoint, port, identity)
        os.environ.update(
            NBTERM_STATE_DIR=str(self.root / "state"),
            NBTERM_RUNTIME_DIR=str(self.root / "run"),
            AWS_ACCESS_KEY_ID="demo",
            AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto accepts anything
        )
        self._seed_spending(gpu)

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="demo-ssh", daemon=True)
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer

        # moto's web server logs to stderr, where Textual draws the screen: not a line of it
        logging.getLogger("werkzeug").disabled = True
        port = _free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        self._moto_port = port
        # moto keeps its state per process, not per server: the demo's world starts empty, even
        # in a process that used moto before (a test run)
        reset = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10) as answer:  # noqa: S310 - loopback
            answer.read()
        return f"http://127.0.0.1:{port}"

    def _stop_moto(self) -> None:
        """Stop moto's server without waiting out its poll.

        Its ``serve_forever`` looks for a shutdown between waits of half a second, so a plain
        ``stop`` took up to 0.5 s of the quit. A connection ends the wait at once: knock until the
        server has seen the request (a knock before it only costs one more turn).
        """
        stopper = threading.Thread(target=self._moto.stop, name="demo-moto-stop", daemon=True)
        stopper.start()
        for _ in range(250):  # 5 s at most, as the SSH thread gets
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self._moto_port), timeout=0.2).close()
            stopper.join(0.02)
            if not stopper.is_alive():
                return

    def _seed_notebooks(self) -> None:
        notebooks = self.home / "notebooks"
        (notebooks / "experiments").mkdir(parents=True)
        (notebooks / "analysis.ipynb").write_text(
            _notebook("Analysis", ["import math", "math.tau / 2"])
        )
        (notebooks / "experiments" / "training run.ipynb").write_text(
            _notebook("Training run", ["losses = [1 / (n + 1) for n in range(10)]", "losses[-1]"])
        )

    def _seed_ec2(self, endpoint: str) -> str:
        import boto3

        ec2: Any = boto3.client(
            "ec2", region_name="us-east-1", endpoint_url=endpoint,
            aws_access_key_id="demo", aws_secret_access_key="demo",  # noqa: S106
        )  # fmt: skip

        def run(name: str, host: str, itype: str, spot: bool) -> str:
            extra: dict[str, Any] = {}
            if spot:
                extra["InstanceMarketOptions"] = {
                    "MarketType": "spot",
                    "SpotOptions": {"SpotInstanceType": "persistent",
                                    "InstanceInterruptionBehavior": "stop"},
                }  # fmt: skip
            tags = [{"Key": "Name", "Value": name}, {"Key": "nbterm:host", "Value": host}]
            raw = ec2.run_instances(
                ImageId=GPU_AMI, InstanceType=itype, MinCount=1, MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **extra,
            )  # fmt: skip
            return str(raw["Instances"][0]["InstanceId"])

        gpu = run("nb-gpu", "gpu", "g5.xlarge", spot=True)
        cpu = run("nb-cpu", "cpu", "m7i.large", spot=False)
        ec2.stop_instances(InstanceIds=[cpu])
        return gpu

    def _seed_spending(self, gpu: str) -> None:
        """An earlier run of today, the demo's own, so that the daily budget can be seen at work.

        What it cost is chosen so that with the gpu instance's spot hours the day reaches 80% of
        the budget ``WARN_AFTER`` seconds after that instance started (the warning) and 100%
        about 2.4 h later (the budget's stop, each after a final sync). The Sync log says so
        when the cockpit opens (its first lines are the journal's).
        """
        cost = WARN_AT * DAILY_BUDGET - GPU_SPOT_PRICE * WARN_AFTER / 3600
        now = dt.datetime.now().astimezone()
        earlier = max(now.replace(hour=0, minute=0, second=0, microsecond=0),
                      now - dt.timedelta(hours=9.5))  # fmt: skip
        day = earlier.date().isoformat()
        paths = resolve_paths(self.config_file)
        ensure_private_dir(paths.state_dir)
        runs = {f"i-0demo0earlier0run@{earlier.isoformat()}": round(cost, 6)}
        write_private(paths.state_dir / "spend.json", json.dumps({day: runs}))
        Journal(paths).append(
            "gpu",
            f"demo: a seeded earlier run today (not charged) cost ${cost:.4f}: the daily budget "
            "warns within a minute",
            at=now.timestamp(),
        )

    def _write_config(self, endpoint: str, port: int, identity: Path) -> None:
        jupyter = f"{Path(sys.executable).parent / 'jupyter'} server"
        power_off = shlex.join([sys.executable, "-m", "nbterm.demo.power_off", endpoint, "nb-gpu"])
        user = os.environ.get("USER") or "demo"
        local = self.root / "local-notebooks"
        self.config_file.write_text(
            "# The demo's config: everything on 127.0.0.1 (see `nbterm --help`).\n"
            f'[aws]\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\nconsole_key_wait = 0\n'
            "# the demo's own prices (moto has none worth showing), near us-east-1's list prices\n"
            'on_demand_prices = { "g5.xlarge" = 1.006, "m7i.large" = 0.1008 }\n'
            f'spot_prices = {{ "g5.xlarge" = {GPU_SPOT_PRICE} }}\n'
            f"daily_budget = {DAILY_BUDGET}\n\n"
            f'[defaults]\nuser = "{user}"\nidentity_file = "{identity}"\nport = {port}\n\n'
            f'[jupyter]\ncommand = "{jupyter}"\nremote_port = {_free_port()}\n'
            f"local_port = {_free_port()}\n"
            'notebook_dir = "~/notebooks"\ntmux_session = "nbterm-demo"\n\n'
            '[hosts.gpu]\ninstance = "nb-gpu"\ntemplate = "gpu"\naddress = "127.0.0.1"\n\n'
            '[hosts.cpu]\ninstance = "nb-cpu"\ntemplate = "cpu"\naddress = "127.0.0.1"\n\n'
            f'[templates.gpu]\nami = "{GPU_AMI}"\ninstance_type = "g5.xlarge"\nspot = true\n'
            "max_price = 0.6\nidle_stop_minutes = 60\n"
            # every demo "instance" is this machine: its guard stops the instance in moto
            f"power_off_command = {json.dumps(power_off)}\n\n"
            f'[templates.cpu]\nami = "{GPU_AMI}"\ninstance_type = "m7i.large"\n\n'
            f'[[sync]]\nhost = "gpu"\nremote = "~/notebooks/"\nlocal = "{local}"\n'
            "interval = 30\n"
        )
        self.config_file.chmod(0o600)

    # --- stop ----------------------------------------------------------------------------------

    def close(self) -> None:
        """End what the demo started (Jupyter, the idle guard, its tmux server, the SSH server,
        moto) by pid."""
        self._end_jupyter()
        self._end_guard()
        self._end_tmux()
        if self._ssh is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._call(self._ssh.stop())
            with contextlib.suppress(Exception):
                self._call(_cancel_the_rest())
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if self._moto is not None:
            self._stop_moto()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end_jupyter(self) -> None:
        for runtime in (self.home / ".nbterm" / "runtime").glob("*/jpserver-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
                os.kill(int(json.loads(runtime.read_text())["pid"]), signal.SIGTERM)

    def _end_guard(self) -> None:
        state = self.home / ".nbterm" / "guard" / "state.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, ProcessLookupError):
            pid = int(json.loads(state.read_text())["pid"])
            command = subprocess.run(
                ["ps", "-p", str(pid), "-o", "command="],
                text=True,
                capture_output=True,
                check=False,
                timeout=10,
            ).stdout
            if "guard.py" in command:  # that pid is still the guard (Linux and macOS ps)
                os.kill(pid, signal.SIGTERM)

    def _end_tmux(self) -> None:
        env = shell_env(self.home, [])
        done = subprocess.run(
            ["tmux", "display-message", "-p", "#{pid}"],
            env=env, capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True, check=False,
                       timeout=10)  # fmt: skip
        pid = done.stdout.strip()
        if pid.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)


async def _cancel_the_rest() -> None:
    """Cancel the SSH server's leftover tasks, so the loop stops cleanly."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # the ended commands' pipes report their end on the next turns of the loop; let them, or
    # their transports are closed only at exit, on a loop that is gone (a traceback on quit)
    await asyncio.sleep(0.1)
