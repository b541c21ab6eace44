"""`iska api`: serve the app with uvicorn; loopback only unless ISKA_API_TOKEN is set (SPEC §8)."""

from __future__ import annotations

import ipaddress
import socket
import sys

import uvicorn

from iska_pipelines.api.app import create_app
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.settings import Settings


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, settings: Settings) -> None:
    """Without a token the API's records would be open to the network: refuse to bind there."""
    if not settings.api_token and not is_loopback(host):
        raise ConfigurationError(
            f"ISKA_API_TOKEN is not set, so the API serves loopback only and will not bind to "
            f"{host}; set ISKA_API_TOKEN (see .env-example) or use --host 127.0.0.1"
        )


def serve(host: str = "127.0.0.1", port: int = 8000) -> int:
    try:
        settings = Settings.from_env()
        check_bind(host, settings)
        app = create_app(settings)
    except ConfigurationError as error:
        print(f"iska api: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0
