"""Jupyter's ``/api/status`` read through the tunnel: a tiny HTTP/1.1 client with a time bound."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from nbterm.untrusted_json import Unusable, load, load_object


@dataclass(frozen=True)
class JupyterStatus:
    latency_ms: float
    started: str
    last_activity: str
    kernels: int
    connections: int


class ProbeError(Exception):
    pass


MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 100
MAX_BODY = 1 << 20
"""Jupyter's answers here are a few hundred bytes; anything far larger is not Jupyter's."""


async def get_status(
    port: int, token: str, timeout: float = 5.0, base_url: str = "/"
) -> JupyterStatus:
    """GET /api/status on 127.0.0.1:port with the token; raises ProbeError on any failure.

    The token goes in the Authorization header (not the URL). Polling this endpoint does not
    reset Jupyter's idle time. Whatever comes back is the remote's to choose: every malformed
    answer (a bad header, a short body, a huge one, JSON of the wrong shape) is a ProbeError,
    never an exception that would end the watch that asked.
    """
    started = time.perf_counter()
    body = await _fetch(port, f"{base_url}api/status", token, timeout)
    latency = (time.perf_counter() - started) * 1000
    data = load_object(body, "the answer from /api/status")
    if isinstance(data, Unusable):
        raise ProbeError(str(data))
    try:
        return JupyterStatus(
            latency_ms=latency,
            started=_text(data.get("started", "")),
            last_activity=_text(data.get("last_activity", "")),
            kernels=_count(data.get("kernels", 0)),
            connections=_count(data.get("connections", 0)),
        )
    except TypeError as exc:
        raise ProbeError(f"unexpected answer from /api/status: {exc}") from None


async def ping(port: int, timeout: float = 5.0, base_url: str = "/") -> float:
    """Milliseconds for Jupyter's version (``/api``, the one answer it gives without a login):
    the health of a server that only takes its password, whose status nbterm cannot read."""
    started = time.perf_counter()
    body = await _fetch(port, f"{base_url}api", "", timeout)
    latency = (time.perf_counter() - started) * 1000
    data = load_object(body, "the answer from /api")
    if isinstance(data, Unusable):
        raise ProbeError(str(data))
    if "version" not in data:
        raise ProbeError("unexpected answer from /api: not Jupyter's version")
    return latency


async def busy_kernels(port: int, token: str, timeout: float = 5.0, base_url: str = "/") -> int:
    """How many kernels are executing right now (``execution_state == "busy"``)."""
    # no_track_activity: asking must not make Jupyter look used
    body = await _fetch(port, f"{base_url}api/kernels?no_track_activity=1", token, timeout)
    kernels = load(body, "the answer from /api/kernels")
    if isinstance(kernels, Unusable):
        raise ProbeError(str(kernels))
    if not isinstance(kernels, list) or not all(isinstance(k, dict) for k in kernels):
        raise ProbeError("unexpected answer from /api/kernels: not a list of kernels")
    return sum(1 for kernel in kernels if kernel.get("execution_state") == "busy")


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise TypeError("a time is not a short string")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1_000_000:
        raise TypeError(f"not a count: {str(value)[:40]!r}")
    return value


async def _fetch(port: int, path: str, token: str, timeout: float) -> bytes:
    try:
        return await asyncio.wait_for(_get(port, path, token), timeout)
    except ProbeError:
        raise
    except TimeoutError:
        raise ProbeError(f"no answer from Jupyter within {timeout:g}s") from None
    except OSError as exc:
        raise ProbeError(f"cannot reach Jupyter: {exc.strerror or exc}") from None
    except asyncio.IncompleteReadError:
        raise ProbeError("the connection closed in the middle of Jupyter's answer") from None
    except (ValueError, asyncio.LimitOverrunError, UnicodeError) as exc:
        raise ProbeError(f"a malformed HTTP answer ({exc.__class__.__name__})") from None


async def _get(port: int, path: str, token: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=MAX_HEADER_LINE)
    try:
        login = f"Authorization: token {token}\r\n" if token else ""
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{login}Connection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ProbeError("the connection closed before Jupyter answered")
        parts = status_line.decode("latin-1").split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ProbeError("a malformed HTTP answer (too many headers)")
        if code == 403:
            raise ProbeError("Jupyter refused the token (403)")
        if code != 200:
            raise ProbeError(f"Jupyter answered HTTP {code}")
        if "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit() or int(length) > MAX_BODY:
                raise ProbeError("a malformed HTTP answer (bad Content-Length)")
            return await reader.readexactly(int(length))
        body = b""
        while chunk := await reader.read(65536):  # until the server closes (Connection: close)
            body += chunk
            if len(body) > MAX_BODY:
                raise ProbeError("a malformed HTTP answer (too large)")
        return body
    finally:
        writer.close()


PortKind = Literal["http", "tcp", "silent", "closed"]


@dataclass(frozen=True)
class PortAnswer:
    """What a forwarded port's server did with a plain HTTP request (``probe_port``)."""

    kind: PortKind
    """``http``: an HTTP answer; ``tcp``: bytes that are not HTTP; ``silent``: the connection
    stays open and nothing comes back; ``closed``: it closed with no answer (nothing listens on
    the remote port: the remote refused the tunnel's channel)."""
    latency_ms: float | None = None
    """Milliseconds to the first byte of the answer (None: none came)."""
    status: int = 0
    """The HTTP status (``http`` only)."""

    @property
    def words(self) -> str:
        if self.kind == "http":
            return f"HTTP {self.status}" if self.status else "HTTP"
        return {"tcp": "TCP", "silent": "open, silent", "closed": "no server"}[self.kind]


async def probe_port(port: int, timeout: float = 5.0) -> PortAnswer:
    """``GET /`` on 127.0.0.1:port, and what came back within ``timeout``: HTTP when the server
    answers HTTP, else whether it answers at all. Raises ProbeError when the local port itself
    refuses (the tunnel does not listen). At most one header line is read, bounded."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, limit=MAX_HEADER_LINE), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise ProbeError(f"the tunnel does not take connections: {exc}") from None
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        first, latency = b"", None
        try:
            async with asyncio.timeout(timeout):
                await writer.drain()
                while len(first) < 5 and (chunk := await reader.read(5 - len(first))):
                    first += chunk
                    latency = latency or (time.perf_counter() - started) * 1000
                if first != b"HTTP/":
                    return PortAnswer("tcp", latency) if first else PortAnswer("closed")
                line = await reader.readline()
        except TimeoutError:
            return PortAnswer("tcp", latency) if first else PortAnswer("silent")
        except (OSError, ValueError, asyncio.LimitOverrunError):
            return PortAnswer("tcp", latency) if first else PortAnswer("closed")
        parts = line.split()
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return PortAnswer("http", latency, status if 100 <= status < 600 else 0)
    finally:
        writer.close()
