"""Reading what a client sent: its Auth-Key and a JSON object body."""

from __future__ import annotations

import json

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
