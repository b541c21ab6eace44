"""Small gateways of a test's own on 127.0.0.1 that answer exactly as told (the simulator's
fault knobs are random), plus loopback addresses that refuse or never complete a connection."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, dict, dict]  # status, body, headers
ACCEPTED: Answer = (200, {"status": "accepted"}, {})


class Gateway:
    """Answers each request with `answer(tries_of_this_message_here)`; remembers what it saw.

    A message is its `msgid` (SMS) or its `msisdn` (billing)."""

    def __init__(self, answer: Callable[[int], Answer] = lambda _n: ACCEPTED) -> None:
        self.answer = answer
        self.tries: Counter = Counter()
        self.tokens: list[str] = []
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, body: dict, token: str) -> Answer:
        with self.lock:
            message = body.get("msgid") or body.get("msisdn")
            self.tries[message] += 1
            self.tokens.append(token)
            n = self.tries[message]
        return self.answer(n)


@contextmanager
def serving(gateway: Gateway) -> Iterator[Gateway]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer, headers = gateway.handle(body, self.headers.get("Auth-Key", ""))
            raw = json.dumps(answer).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/sms/x"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/sms/down"


@contextmanager
def connect_timeout_url() -> Iterator[str]:
    """A loopback port that listens but never accepts, its backlog already full: Linux drops
    further SYNs, so a connect hangs until the client's connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        try:
            for _ in range(3):  # backlog 0 still queues one; the rest fill what Linux allows
                waiting = socket.socket()
                waiting.setblocking(False)
                waiting.connect_ex(("127.0.0.1", port))
                queued.append(waiting)
            yield f"http://127.0.0.1:{port}/sms/stuck"
        finally:
            for waiting in queued:
                waiting.close()
