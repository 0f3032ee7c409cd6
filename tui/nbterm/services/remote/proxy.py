"""A proxy command run the way OpenSSH runs its ProxyCommand: its standard input and output are
one end of a socket pair, and the SSH connection is made over the other end.

Why not asyncssh's own ``proxy_command``: it runs the command with all three of its standard
streams as pipes and reads every one of them as the server's bytes. So one warning the proxy
printed (the AWS CLI's, for example) went into the SSH stream; a proxy that closed its standard
error (``2>/dev/null``, a redirect) ended the connection at once; and when the proxy failed its
own words were lost, leaving "Connection lost". Here its standard error is read apart, only its
last :data:`WORDS_LIMIT` bytes kept (untrusted, bounded), and a failed connect says them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket

from nbterm.services.remote.output import keep_tail, last_lines

WORDS_LIMIT = 4096
"""How much of the proxy's standard error is kept: its last bytes."""
EXIT_WAIT = 2.0
"""How long a failed connect waits for the proxy's last words before saying what it has."""


class ProxyProcess:
    """One proxy command for one connection; :attr:`sock` is the connection's end."""

    def __init__(self, process: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self._tail = bytearray()
        assert process.stderr is not None
        self._reader = asyncio.ensure_future(keep_tail(process.stderr, self._tail, WORDS_LIMIT))

    @classmethod
    async def start(cls, argv: list[str]) -> ProxyProcess:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a ^C in the terminal is nbterm's to handle, not its
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(process, ours)

    async def last_words(self) -> tuple[bool, str]:
        """Whether the proxy has ended, and what it said on standard error: its last lines as
        one line that cannot steer a terminal ("" if nothing). Waits for its end up to
        :data:`EXIT_WAIT`: a proxy that still runs did not fail, whatever it printed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(asyncio.shield(self._reader), self.process.wait()), EXIT_WAIT
            )
        return self.process.returncode is not None, last_lines(bytes(self._tail))

    def end(self) -> None:
        """End the proxy process (it normally ends by itself once its socket closes, which the
        SSH connection owns once it is made)."""
        if self.process.returncode is None:  # not reaped: its pid is still its group's id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # the whole group it leads (start_new_session): `aws` runs its plugin as a
                # child, which a signal to `aws` alone would leave behind
                os.killpg(self.process.pid, signal.SIGTERM)
        if not self._reader.done():
            self._reader.cancel()

    def close(self) -> None:
        """A connect that failed: the socket too (nothing else holds it)."""
        self.sock.close()
        self.end()
