"""A Jupyter kernel driven over Jupyter's own websocket protocol, as JupyterLab drives it.

Starts a kernel with the REST API, opens `/api/kernels/ID/channels` (the JSON protocol that
every Jupyter server speaks), and times `execute_request` to `execute_reply`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import websocket


class KernelClient:
    """One kernel, one websocket, reached through ``port`` (a tunnel's local end)."""

    def __init__(self, port: int, token: str, timeout: float = 60.0) -> None:
        self.port, self.token = port, token
        self.session = uuid.uuid4().hex
        self.kernel_id = self._rest("POST", "/api/kernels", {"name": "python3"})["id"]
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/api/kernels/{self.kernel_id}/channels"
            f"?session_id={self.session}",
            header=[f"Authorization: token {token}"],
            timeout=timeout,
        )
        if self.ws.sock is not None:  # as browsers do
            self.ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _rest(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def execute(self, code: str) -> dict[str, Any]:
        """Run ``code``; returns the execute_reply's content (waits for it, skipping the rest)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self.session,
                        "username": "bench",
                        "date": dt.datetime.now(dt.UTC).isoformat(),
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        while True:
            message = json.loads(self.ws.recv())
            if (
                message.get("channel") == "shell"
                and message.get("parent_header", {}).get("msg_id") == msg_id
            ):
                content: dict[str, Any] = message["content"]
                return content

    def round_trips_ms(self, count: int, code: str = "1 + 1") -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            reply = self.execute(code)
            times.append((time.perf_counter() - started) * 1000)
            assert reply["status"] == "ok", reply
        return times

    def close(self) -> None:
        self.ws.close()
        with contextlib.suppress(urllib.error.URLError, OSError):  # the server may be gone
            self._rest("DELETE", f"/api/kernels/{self.kernel_id}")
