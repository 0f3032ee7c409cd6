"""Shared pieces of the benchmarks: statistics, the loopback sshd, plain socket clients."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bench_home(prefix: str) -> Path:
    """A fresh folder for one benchmark run, with nbterm's config, state and runtime inside."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        NBTERM_CONFIG=str(home / "config.toml"),
        NBTERM_STATE_DIR=str(home / "state"),
        NBTERM_RUNTIME_DIR=str(home / "run"),
    )
    return home


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.005)
    raise TimeoutError(f"127.0.0.1:{port} did not open")


def serve_forever(handler: Callable[[socket.socket], None]) -> int:
    """A threaded TCP server on 127.0.0.1; returns its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    port: int = listener.getsockname()[1]
    return port


def echo_handler(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def bulk_handler(size: int) -> Callable[[socket.socket], None]:
    chunk = b"\0" * (1 << 20)

    def handle(conn: socket.socket) -> None:
        with conn:
            if not conn.recv(1):  # the client says "go"; a readiness probe just hangs up
                return
            sent = 0
            with contextlib.suppress(OSError):
                while sent < size:
                    conn.sendall(chunk)
                    sent += len(chunk)

    return handle


def bulk_mb_per_s(port: int, size: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        buffer = bytearray(1 << 20)
        started = time.perf_counter()
        sock.sendall(b"g")
        received = 0
        while received < size:
            n = sock.recv_into(buffer)
            if not n:
                break
            received += n
        elapsed = time.perf_counter() - started
    assert received >= size, f"only {received} of {size} bytes arrived"
    return size / elapsed / 1e6


def round_trips_us(port: int, count: int, payload: int = 200) -> list[float]:
    data = b"x" * payload
    times = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(data)
            got = 0
            while got < payload:
                got += len(sock.recv(65536))
            times.append((time.perf_counter() - started) * 1e6)
    return times
