"""A stand-in for AWS Systems Manager's way in: an `aws` on PATH that checks the arguments
nbterm gives it, as `aws ssm start-session` with the AWS-StartSSHSession document would take
them, then does what that session does: joins its standard input and output to the instance's
``localhost:portNumber`` (here, the loopback sshd). It writes one JSON line per call (its
arguments, and which program ran it: OpenSSH's ssh, or a Python's command line), so a test can say
that both SSH stacks went through it.

Which instance is "connected" is the test's word: ``NBTERM_TEST_SSM_TARGET``; any other target
is refused with the words the real CLI uses. A `session-manager-plugin` beside it answers its
version, so `config check --online` finds the plugin."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

TARGET_VARIABLE = "NBTERM_TEST_SSM_TARGET"
LOG_VARIABLE = "NBTERM_TEST_SSM_LOG"
DOCUMENT = "AWS-StartSSHSession"


@dataclass(frozen=True)
class FakeSsm:
    bin_dir: Path
    log: Path

    def calls(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def install(bin_dir: Path, *, plugin: bool = True) -> FakeSsm:
    """Write the stand-ins into ``bin_dir`` (put it first on PATH, and ``LOG_VARIABLE`` and
    ``TARGET_VARIABLE`` in the environment)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    aws = bin_dir / "aws"
    root = str(Path(__file__).resolve().parents[2])
    aws.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {root!r})\n"
                   "from tests.harness.ssm import main\nmain()\n")  # fmt: skip
    aws.chmod(aws.stat().st_mode | stat.S_IXUSR)
    if plugin:
        plugin_file = bin_dir / "session-manager-plugin"
        plugin_file.write_text("#!/bin/sh\necho 1.2.650.0\n")
        plugin_file.chmod(plugin_file.stat().st_mode | stat.S_IXUSR)
    return FakeSsm(bin_dir, bin_dir / "ssm-calls.jsonl")


def _refuse(message: str, code: int = 254) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(code)


def _parent() -> str:
    """The program that ran it: ``ssh``, or the Python module or script (its command line)."""
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [os.fsdecode(word) for word in argv if word]
    if words and Path(words[0]).name == "ssh":
        return "ssh"
    return " ".join(words)


def main() -> None:
    args = sys.argv[1:]
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps({"args": args, "parent": _parent()}) + "\n")
    if args[:2] != ["ssm", "start-session"]:
        _refuse(f"the stand-in aws knows only `ssm start-session`, not {args[:2]}", 252)
    options = dict(zip(args[2::2], args[3::2], strict=False))
    if len(args[2:]) % 2 or set(options) - {"--target", "--document-name", "--parameters",
                                            "--region", "--profile"}:  # fmt: skip
        _refuse(f"aws: error: unexpected arguments {args[2:]}", 252)
    if options.get("--document-name") != DOCUMENT:
        _refuse(f"expected --document-name {DOCUMENT}, got {options.get('--document-name')}", 252)
    target = options.get("--target", "")
    if not target.startswith("i-") or target != os.environ.get(TARGET_VARIABLE):
        _refuse(
            "An error occurred (TargetNotConnected) when calling the StartSession operation: "
            f"{target} is not connected."
        )
    parameters = options.get("--parameters", "")
    if not parameters.startswith("portNumber=") or not parameters[11:].isdigit():
        _refuse(f"expected --parameters portNumber=N, got {parameters!r}", 252)
    relay(int(parameters[11:]))


def relay(port: int) -> None:
    """Standard input to the instance's port, and its answers to standard output, until either
    side ends (as the session's data channel does)."""
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as exc:
        _refuse(f"SessionId: nbterm-test: cannot connect to localhost:{port}: {exc}")
        return
    conn.settimeout(None)

    def upstream() -> None:
        while data := os.read(0, 65536):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := conn.recv(65536):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]
    os._exit(0)
