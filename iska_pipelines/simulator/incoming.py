"""Reading what a client sent: its Auth-Key or basic auth, a JSON object or a form body."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl

from fastapi import Request

from iska_pipelines.simulator.knobs import Knobs


def authorised(request: Request, knobs: Knobs) -> bool:
    return request.headers.get("Auth-Key", "") in knobs.tokens


async def read_object(request: Request) -> tuple[dict, str | None]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}, "the body is not JSON"
    if not isinstance(body, dict):
        return {}, "the body must be a JSON object"
    return body, None


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, UTF-8 (a repeated name: its last value)."""
    raw = await request.body()
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic` header; None without a readable one."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None
