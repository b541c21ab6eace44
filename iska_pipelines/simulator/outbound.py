"""An HTTP request the simulator makes as a gateway: a delivery report or a subscriber's message.

Each protocol says its own way (a GET with the report in its URL, a form, a JSON body, a signed
header); this holds one such request so the report sender and `/simulator/inbound` send any of
them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass(frozen=True)
class Outbound:
    method: str
    url: str
    json: Any = None  # a JSON body
    form: dict[str, str] | None = None  # an application/x-www-form-urlencoded body
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, session: requests.Session | None, timeout_seconds: float) -> requests.Response:
        """Make the request (with `session`, or a one-off connection without one)."""
        send = session.request if session is not None else requests.request
        return send(
            self.method,
            self.url,
            json=self.json,
            data=self.form,
            headers=self.headers,
            timeout=timeout_seconds,
        )
