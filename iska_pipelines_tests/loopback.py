"""A real ASGI app served by uvicorn on 127.0.0.1, on a free port, in a thread: the way tests
run the API and the gateway simulator. Readiness is polled on `/health`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
import uvicorn

STARTUP_SECONDS = 15.0


@contextmanager
def serve_on_loopback(make_app: Callable[[str], object], name: str) -> Iterator[str]:
    """Serve `make_app(base_url)` until the block ends; yields the base URL once `/health`
    answers (the app is told its own URL first: the API puts it in callback URLs)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(make_app(base_url), log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        _wait_until_healthy(base_url, thread, name)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _wait_until_healthy(base_url: str, thread: threading.Thread, name: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the {name} stopped while starting")
        try:
            if requests.get(f"{base_url}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.02)  # polling interval, not a synchronisation delay
    raise RuntimeError(f"the {name} did not answer /health within {STARTUP_SECONDS} s")
