"""Jupyter's ``/api/status`` read through the tunnel: a tiny HTTP/1.1 client with a time bound."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class JupyterStatus:
    latency_ms: float
    started: str
    last_activity: str
    kernels: int
    connections: int


class ProbeError(Exception):
    pass


async def get_status(port: int, token: str, timeout: float = 5.0) -> JupyterStatus:
    """GET /api/status on 127.0.0.1:port with the token; raises ProbeError on any failure.

    The token goes in the Authorization header (not the URL). Polling this endpoint does not
    reset Jupyter's idle time.
    """
    started = time.perf_counter()
    try:
        body = await asyncio.wait_for(_get(port, "/api/status", token), timeout)
    except TimeoutError:
        raise ProbeError(f"no answer from Jupyter within {timeout:g}s") from None
    except OSError as exc:
        raise ProbeError(f"cannot reach Jupyter: {exc.strerror or exc}") from None
    latency = (time.perf_counter() - started) * 1000
    try:
        data = json.loads(body)
        return JupyterStatus(
            latency_ms=latency,
            started=str(data.get("started", "")),
            last_activity=str(data.get("last_activity", "")),
            kernels=int(data.get("kernels", 0)),
            connections=int(data.get("connections", 0)),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ProbeError(f"unexpected answer from /api/status: {exc}") from None


async def busy_kernels(port: int, token: str, timeout: float = 5.0) -> int:
    """How many kernels are executing right now (``execution_state == "busy"``)."""
    try:
        # no_track_activity: asking must not make Jupyter look used
        body = await asyncio.wait_for(
            _get(port, "/api/kernels?no_track_activity=1", token), timeout
        )
        kernels = json.loads(body)
    except (TimeoutError, OSError, ValueError) as exc:
        raise ProbeError(f"cannot list kernels: {exc}") from None
    return sum(1 for kernel in kernels if kernel.get("execution_state") == "busy")


async def _get(port: int, path: str, token: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: token {token}\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ProbeError("the connection closed before Jupyter answered")
        parts = status_line.decode("latin-1").split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
        if code == 403:
            raise ProbeError("Jupyter refused the token (403)")
        if code != 200:
            raise ProbeError(f"Jupyter answered HTTP {code}")
        return body
    finally:
        writer.close()
