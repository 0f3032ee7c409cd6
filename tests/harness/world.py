"""The world of the sync fault and hostile-remote suites: the loopback sshd, one remote folder,
one sync rule, and ways to run nbterm's sync in-process (the engine) or as a person does
(``nbterm sync``)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbterm.config import LoadedConfig, load_config
from nbterm.locations import Paths
from nbterm.services.remote.ssh_config import write_ssh_config
from nbterm.services.sync.engine import SyncEngine
from tests.harness.remote import remote_config_text, sync_rule
from tests.harness.sshd import SshServer
from tests.harness.sync import Recorder, Remote


@dataclasses.dataclass
class World:
    sshd: SshServer
    paths: Paths
    remote: Remote
    local: Path
    write_config: Callable[[str], Path]
    extra: str = ""

    def config_text(self) -> str:
        return remote_config_text(self.sshd) + sync_rule(self.remote.folder, self.local,
                                                          extra=self.extra)  # fmt: skip

    def config(self, local: Path | None = None, extra: str | None = None) -> LoadedConfig:
        """(Re)write the config with the rule pulling into ``local`` and load it."""
        if local is not None:
            self.local = local
        if extra is not None:
            self.extra = extra
        return load_config(self.write_config(self.config_text()))

    def engine(
        self, recorder: Recorder, *, keep_config: bool = False, **rule: object
    ) -> SyncEngine:
        config = load_config(self.paths.config_file) if keep_config else self.config()
        chosen = dataclasses.replace(config.sync[0], **rule) if rule else config.sync[0]  # type: ignore[arg-type]
        return SyncEngine(chosen, self.paths, self.paths.ssh_config, recorder, io_timeout=5)

    def nbterm(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nbterm", *args],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "nbterm", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip


@pytest.fixture
def world(
    sshd: SshServer,
    write_config: Callable[[str], Path],
    paths: Paths,
    trust_sshd: Callable[[str], None],
    tmp_path: Path,
) -> Iterator[World]:
    folder = f"nbterm-faults-{uuid.uuid4().hex[:8]}"
    trust_sshd("box")
    world = World(sshd, paths, Remote(paths.ssh_config, folder), tmp_path / "local nb",
                  write_config)  # fmt: skip
    write_ssh_config(world.config(), paths)
    world.remote.sh(f"mkdir -p {folder}")
    try:
        yield world
    finally:
        os.chdir(tmp_path)
        world.remote.sh(f"chmod -R u+w {folder}; rm -rf {folder}")
        world.remote.end_master()
