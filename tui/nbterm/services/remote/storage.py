"""Which of a host's synced folders live on an instance-store volume (a disk a stop erases).

EC2's instance store (the local NVMe of g5, p4d, i4i...) keeps its data only while the instance
runs: a stop, a spot interruption or a power-off erases it. A notebook folder there has no copy
but the one nbterm brings home, so such an instance is never stopped without a final sync that
completed (``services/host/down.py``). The remote says which device holds each folder (``df``)
and what that device is (the NVMe model EC2 gives it, ``Amazon EC2 NVMe Instance Storage``).
What it prints is data: only the folders nbterm asked about can come back.
"""

from __future__ import annotations

import shlex

from nbterm.services.remote.ssh import Link, run

INSTANCE_STORE_MODEL = "Amazon EC2 NVMe Instance Storage"


def _home_relative(folder: str) -> str:
    """A rule's remote folder as the shell on the remote sees it (``~/nb`` is in $HOME)."""
    if folder == "~" or folder.startswith("~/"):
        return '"$HOME"' + shlex.quote(folder[1:]) if folder != "~" else '"$HOME"'
    return shlex.quote(folder)


def probe_command(folders: list[str]) -> str:
    """One line per folder: its index, then the model of the disk that holds it (or nothing)."""
    lines = []
    for index, folder in enumerate(folders):
        lines.append(
            f"dev=$(df -P -- {_home_relative(folder)} 2>/dev/null | awk 'NR==2{{print $1}}'); "
            'disk=$(lsblk -no PKNAME "$dev" 2>/dev/null | head -n1); '
            "disk=${disk:-${dev#/dev/}}; "
            f'printf "{index} %s\\n" "$(head -c 128 /sys/block/"$disk"/device/model '
            '2>/dev/null | tr -d "\\n")"'
        )
    return "; ".join(lines) + "; true"


def parse(output: str, folders: list[str]) -> list[str]:
    """The folders whose disk is an instance store."""
    found = []
    for line in output.splitlines():
        index, _, model = line.partition(" ")
        if index.isdigit() and int(index) < len(folders) and model.strip() == INSTANCE_STORE_MODEL:
            found.append(folders[int(index)])
    return found


async def on_instance_store(link: Link, folders: list[str]) -> list[str]:
    """The ``folders`` (as the sync rules give them) that an instance store holds."""
    if not folders:
        return []
    _status, out, _err = await run(link, probe_command(folders), timeout=15)
    return parse(out, folders)
