"""The cockpit's controller driven without a screen: what it posts is recorded, and the
questions a person would answer are answered yes."""

from __future__ import annotations

from nbterm.services.remote.host_keys import HostKeyQuestion
from nbterm.ui.messages import HostNote, HostStatus


class RecordingScreen:
    """Stands in for the main screen: keeps the host statuses and notes posted to it."""

    def __init__(self) -> None:
        self.said: list[HostStatus | HostNote] = []

    def post_message(self, message: object) -> bool:
        if isinstance(message, (HostStatus, HostNote)):
            self.said.append(message)
        return True

    def statuses(self) -> list[str]:
        return [m.status for m in self.said if isinstance(m, HostStatus)]

    def story(self) -> list[tuple[str, str]]:
        """(status, detail) and ("note", text), in order: for failure messages."""
        return [
            (m.status, m.detail) if isinstance(m, HostStatus) else ("note", m.text)
            for m in self.said
        ]


async def trust_the_test_sshd(question: HostKeyQuestion) -> bool:
    """The host-key dialog's yes: the key is the test sshd's own."""
    return True
