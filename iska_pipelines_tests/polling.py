"""Waiting for what travels asynchronously (replies sent after the API answered, delivery
reports): poll a condition until it holds, failing at a deadline rather than sleeping a guess."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.05


def wait_for(condition: Callable[[], T], seconds: float = 15.0) -> T:
    """The condition's first truthy value; AssertionError when none came within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(POLL_SECONDS)
