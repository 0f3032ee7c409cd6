"""Watch for the two-minute spot interruption notice, from the instance itself.

A small loop on the instance asks the instance metadata service (IMDSv2: a session token, then
``spot/instance-action``) every few seconds, over the SSH connection nbterm already has, and prints
only when a notice appears: nbterm does nothing while there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nbterm.services.remote.output import lines
from nbterm.services.remote.shell import WATCH_ENDED, until_disconnected
from nbterm.services.remote.ssh import Link
from nbterm.untrusted_json import Unusable, load_object

IMDS = "http://169.254.169.254"


@dataclass(frozen=True)
class SpotNotice:
    action: str
    """``stop``, ``terminate`` or ``hibernate``."""
    time: str
    """When AWS will act (UTC, ISO 8601)."""


def watch_command(imds: str = IMDS, every: float = 5.0) -> str:
    token = (
        "curl -s -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "
        f"{imds}/latest/api/token"
    )
    action = (
        'curl -sf -m 2 -H "X-aws-ec2-metadata-token: $T" '
        f"{imds}/latest/meta-data/spot/instance-action"
    )
    loop = f'while :; do T=$({token}); if A=$({action}); then echo "$A"; fi; sleep {every}; done'
    return "command -v curl >/dev/null || { echo 'nbterm:no-curl'; exit 3; }; " + (
        until_disconnected(loop)
    )


def parse_notice(line: str) -> SpotNotice | None:
    data = load_object(line, "a spot notice", limit=4096)
    if isinstance(data, Unusable) or "action" not in data:
        return None
    return SpotNotice(str(data["action"]), str(data.get("time", "")))


class SpotWatcher:
    """Calls ``on_notice`` once when the instance gets its interruption notice."""

    def __init__(
        self,
        get_link: Callable[[], Awaitable[Link]],
        on_notice: Callable[[SpotNotice], None],
        *,
        imds: str = IMDS,
        every: float = 5.0,
        on_problem: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.get_link = get_link
        self.on_notice = on_notice
        self.imds = imds
        self.every = every
        self.on_problem = on_problem
        self.notice: SpotNotice | None = None

    async def run(self) -> None:
        while self.notice is None:
            try:
                link = await self.get_link()
                process = await link.conn.create_process(
                    watch_command(self.imds, self.every), encoding=None
                )
                try:
                    async for line in lines(process.stdout, limit=4096):
                        if str(line).startswith(WATCH_ENDED):
                            break  # the loop never ends by itself; look again
                        if str(line).strip() == "nbterm:no-curl":
                            self.on_problem(
                                "spot interruption notices cannot be watched: curl is not "
                                "installed on the instance"
                            )
                            return
                        notice = parse_notice(str(line))
                        if notice is not None:
                            self.notice = notice
                            self.on_notice(notice)
                            return
                finally:
                    with contextlib.suppress(Exception):
                        process.terminate()
                    process.close()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001, S110 - the link dropped: the next one is watched
                pass
            await asyncio.sleep(1.0)
