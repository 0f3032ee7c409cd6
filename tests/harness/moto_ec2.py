"""moto's EC2 server on a free loopback port, reached through ``endpoint_url``."""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from nbterm.config import LoadedConfig
from tests.harness.procs import free_port


@dataclass
class MotoEc2:
    server: ThreadedMotoServer
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def start_moto() -> MotoEc2:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return MotoEc2(server, port)


def stopped_instance(config: LoadedConfig, host: str = "gpu") -> str:
    """An instance of ``host``'s template, launched in moto and stopped again: its id."""
    from nbterm.services.cloud.ec2 import Ec2

    ec2 = Ec2(config.aws)
    launched = ec2.launch(config.hosts[host], config.templates[config.hosts[host].template or ""])
    ec2.wait_for(launched.id, "running", delay=0.1)
    ec2.stop(launched.id)
    ec2.wait_for(launched.id, "stopped", delay=0.1)
    return launched.id
