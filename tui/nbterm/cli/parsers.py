"""The command line's grammar: every command and its options, with no heavy import.

Handlers are named as ``module:function`` and imported only when their command runs, so
`nbterm` (the cockpit) and `nbterm --help` start without boto3 or asyncssh.
"""

from __future__ import annotations

import argparse
from typing import Any


def register_config(commands: Any) -> None:
    config = commands.add_parser("config", help="create, check or locate the config file")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="write an annotated starter config")
    init.add_argument(
        "--force", action="store_true", help="replace an existing file (kept as .bak)"
    )
    init.set_defaults(handler="nbterm.cli.config_cmds:cmd_init")
    check = actions.add_parser("check", help="validate the config and print a summary")
    check.add_argument(
        "--online",
        action="store_true",
        help="also try it: AWS credentials and instances, and an SSH login to each plain host",
    )
    check.set_defaults(handler="nbterm.cli.config_cmds:cmd_check")
    path = actions.add_parser("path", help="print the path of the config file in use")
    path.set_defaults(handler="nbterm.cli.config_cmds:cmd_path")


def register_ssh(commands: Any) -> None:
    show = commands.add_parser(
        "ssh-config", help="print the OpenSSH config nbterm generates (for an Include line)"
    )
    show.set_defaults(handler="nbterm.cli.ssh_cmds:cmd_ssh_config")

    ssh = _on_host(
        commands, "ssh", "open an interactive OpenSSH session to a host",
        "nbterm.cli.ssh_cmds:cmd_ssh",
    )  # fmt: skip
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run instead")

    imp = commands.add_parser(
        "import-ssh", help="turn ~/.ssh/config Host entries into nbterm hosts (TOML)"
    )
    imp.add_argument("hosts", nargs="*", metavar="HOST", help="hosts to import (default: all)")
    imp.add_argument(
        "--ssh-config", metavar="PATH", default="~/.ssh/config", help="default: ~/.ssh/config"
    )
    where = imp.add_mutually_exclusive_group()
    where.add_argument("--output", metavar="FILE", help="write to a new file (never overwritten)")
    where.add_argument(
        "--append", action="store_true", help="append to the config in use, after validating"
    )
    imp.set_defaults(handler="nbterm.cli.ssh_cmds:cmd_import_ssh")


def register_remote(commands: Any) -> None:
    up = _on_host(
        commands, "up",
        "connect, start or reattach Jupyter, keep a tunnel and the sync rules running until Ctrl-C",
        "nbterm.cli.remote_cmds:cmd_up",
    )  # fmt: skip
    up.add_argument("--open", action="store_true", help="open the notebook in the browser")
    up.add_argument(
        "--install-jupyter",
        action="store_true",
        help="if the host has no Jupyter, install JupyterLab in ~/.nbterm/jupyter there (no root)",
    )
    up.add_argument(
        "--keep-running",
        action="store_true",
        help="if the up fails after nbterm started the instance, leave it running (its idle "
        "guard armed where it can be) instead of stopping it again",
    )
    add_accept(up)

    forward = _on_host(
        commands, "forward",
        "forward one more port of a running host to 127.0.0.1 until Ctrl-C (healed like a tunnel)",
        "nbterm.cli.forward_cmds:cmd_forward",
    )  # fmt: skip
    forward.add_argument("remote_port", type=_port, metavar="REMOTE_PORT",
                         help="the port on the remote's 127.0.0.1")  # fmt: skip
    forward.add_argument(
        "local_port", type=_port, nargs="?", metavar="LOCAL_PORT",
        help="the port here (default: the same; a taken one: the next free one)",
    )  # fmt: skip
    add_accept(forward)

    status = commands.add_parser("status", help="hosts, open tunnels and remote Jupyter servers")
    status.set_defaults(handler="nbterm.cli.remote_cmds:cmd_status")

    log = commands.add_parser(
        "log", help="what nbterm said about each host, kept: why an instance stopped, what synced"
    )
    log.add_argument("name", nargs="?", help="only this host (default: every host)")
    log.add_argument("--since", metavar="AGE", help="only the last 30m, 12h, 2d... (default: "
                     "the last 100 lines)")  # fmt: skip
    log.set_defaults(handler="nbterm.cli.log_cmds:cmd_log")

    _on_host(
        commands, "forget-host", "forget a host's stored SSH host key",
        "nbterm.cli.remote_cmds:cmd_forget_host",
    )  # fmt: skip

    stop = _on_host(
        commands, "stop-jupyter", "stop the Jupyter server nbterm runs on a host (kernels end)",
        "nbterm.cli.remote_cmds:cmd_stop_jupyter",
    )  # fmt: skip
    add_accept(stop)


def register_sync(commands: Any) -> None:
    sync = _on_host(
        commands, "sync", "pull a host's notebooks now (--watch: keep going)",
        "nbterm.cli.sync_cmds:cmd_sync",
    )  # fmt: skip
    sync.add_argument(
        "--watch", action="store_true", help="keep syncing on remote changes and the timer"
    )
    add_accept(sync)

    down = _on_host(
        commands, "down",
        "final sync, close the host's tunnel (Jupyter keeps running), stop an EC2 instance",
        "nbterm.cli.sync_cmds:cmd_down",
    )  # fmt: skip
    add_accept(down)


def register_cloud(commands: Any) -> None:
    launch = commands.add_parser("launch", help="launch an EC2 instance from a template")
    launch.add_argument("template", help="template name from the config")
    launch.add_argument("--host", help="the host it is for (default: the one using the template)")
    launch.add_argument("--name", help="its Name tag (default: the host's instance or name)")
    launch.add_argument(
        "--no-wait-ssh", action="store_true", help="return once it runs, before SSH answers"
    )
    add_accept(launch)
    launch.set_defaults(handler="nbterm.cli.cloud_cmds:cmd_launch")

    stop = _on_host(
        commands, "stop", "final sync, then stop an EC2 instance", "nbterm.cli.cloud_cmds:cmd_stop"
    )
    stop.add_argument("--force", action="store_true", help="stop even if the final sync fails")
    add_accept(stop)

    terminate = _on_host(
        commands, "terminate", "final sync, then terminate an EC2 instance (its disk is deleted)",
        "nbterm.cli.cloud_cmds:cmd_terminate",
    )  # fmt: skip
    terminate.add_argument("--yes", action="store_true", help="do not ask to type the name")
    terminate.add_argument("--force", action="store_true", help="even if the final sync fails")
    add_accept(terminate)


def register_guard(commands: Any) -> None:
    guard = commands.add_parser(
        "guard",
        help="the idle guard on an EC2 instance: status, off (stays off), on, extend DURATION",
        description="The idle guard runs on the instance and powers it off (stopped, disk kept) "
        "when nothing on it has been busy (a kernel, a GPU, the CPU) past the template's "
        "idle_stop_minutes plus guard_grace_minutes and no nbterm has been attached for "
        "guard_lease_minutes. extend postpones its idle stop in place.",
    )
    guard.add_argument("action", choices=["status", "off", "on", "extend"])
    guard.add_argument("name", help="host name from the config")
    guard.add_argument(
        "duration", nargs="?",
        help="with extend: how long no idle stop may happen, for example 3h, 90m, 1d (at most "
        "7 days; max_hours and the daily budget still apply)",
    )  # fmt: skip
    guard.set_defaults(handler="nbterm.cli.guard_cmds:cmd_guard")
    add_accept(guard)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return int(text)


def _on_host(commands: Any, command: str, help: str, handler: str) -> argparse.ArgumentParser:
    """A command that acts on one configured host: ``nbterm COMMAND NAME``."""
    parser: argparse.ArgumentParser = commands.add_parser(command, help=help)
    parser.add_argument("name", help="host name from the config")
    parser.set_defaults(handler=handler)
    return parser


def add_accept(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-host-key",
        metavar="FINGERPRINT",
        help="trust a new host key without asking if it has this SHA256 fingerprint",
    )


def register_all(commands: Any) -> None:
    register_config(commands)
    register_ssh(commands)
    register_remote(commands)
    register_sync(commands)
    register_cloud(commands)
    register_guard(commands)
