"""Servers a notebook starts beside Jupyter, on the remote's 127.0.0.1 (the loopback sshd's
machine): a tiny HTTP server (TensorBoard's part), a raw TCP echo, and one that accepts and
says nothing. They run in a process of their own, ended by its pid (``end_process``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.harness.procs import end_process

_SERVERS = r"""
import http.server, json, socket, socketserver, sys, threading

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"tensorboard-ish page\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)

class Silent(socketserver.BaseRequestHandler):
    def handle(self):
        while self.request.recv(65536):
            pass

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

servers = {
    "http": http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page),
    "echo": Server(("127.0.0.1", 0), Echo),
    "silent": Server(("127.0.0.1", 0), Silent),
}
for server in servers.values():
    threading.Thread(target=server.serve_forever, daemon=True).start()
free = socket.socket()
free.bind(("127.0.0.1", 0))
ports = {name: server.server_address[1] for name, server in servers.items()}
ports["closed"] = free.getsockname()[1]  # bound, never listening: nothing answers there
print(json.dumps(ports), flush=True)
sys.stdin.read()
"""


@dataclass(frozen=True)
class RemoteServices:
    http: int
    echo: int
    silent: int
    closed: int
    pid: int


@contextmanager
def remote_services() -> Iterator[RemoteServices]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ports = json.loads(proc.stdout.readline())
        yield RemoteServices(pid=proc.pid, **ports)
    finally:
        end_process(proc)
