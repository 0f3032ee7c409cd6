"""A host key verifier for new EC2 instances: trust what the instance printed on its console."""

from __future__ import annotations

import asyncio
import time

from nbterm.services.cloud.ec2 import Ec2, Ec2Error
from nbterm.services.cloud.fingerprints import parse_console
from nbterm.services.remote.host_keys import (
    HostKeyQuestion,
    HostKeyVerificationError,
    Verifier,
)


def console_verifier(
    ec2: Ec2,
    instance_id: str,
    *,
    fallback: Verifier | None,
    wait: float = 180.0,
    delay: float = 5.0,
) -> Verifier:
    """Match the server's key against the console's; ask ``fallback`` only if there is no block.

    cloud-init prints the keys a little after boot, so the console is read again every ``delay``
    seconds for up to ``wait`` seconds. A key that is not among those printed is refused, loudly.
    """

    async def verify(question: HostKeyQuestion) -> bool:
        deadline = time.monotonic() + wait
        while True:
            try:
                output = await asyncio.to_thread(ec2.console_output, instance_id)
            except Ec2Error:
                output = ""
            keys = parse_console(output)
            if keys.conflict:
                raise HostKeyVerificationError(
                    f"{question.host}: REFUSED: {keys.conflict} (instance {instance_id}), so none "
                    "of them can be trusted: something on the instance may have printed a block "
                    f"of its own. The server presented {question.key_type} {question.sha256}; "
                    "check it another way (the EC2 console's own view, or the AMI's owner), then "
                    f"`nbterm up {question.host}` asks. Nothing was stored."
                )
            if keys.found:
                if keys.matches(question):
                    return True
                printed = ", ".join(sorted(keys.sha256 | keys.md5)) or "(keys only)"
                raise HostKeyVerificationError(
                    f"{question.host}: REFUSED: the server at {question.address}:{question.port} "
                    f"presented {question.key_type} {question.sha256}, which is not a key that "
                    f"instance {instance_id} printed on its console ({printed}). Someone may be "
                    "intercepting the connection; nothing was stored."
                )
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(delay)
        if fallback is None:
            raise HostKeyVerificationError(
                f"{question.host}: instance {instance_id} printed no host keys on its console "
                f"within {wait:g}s, and there is nobody to ask: connect interactively once "
                f"(`nbterm up {question.host}`) to check {question.key_type} {question.sha256}"
            )
        return await fallback(question)

    return verify
