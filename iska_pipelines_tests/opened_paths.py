"""Which paths the process opens or lists, seen through Python's audit hooks (PEP 578)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

_active: list[list[str]] = []
_EVENTS = {"open", "os.scandir", "os.listdir", "os.stat", "os.lstat"}


def _hook(event: str, args: tuple) -> None:
    if _active and event in _EVENTS and args:
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            _active[-1].append(os.fsdecode(target))


sys.addaudithook(_hook)


@contextmanager
def paths_touched_during():
    seen: list[str] = []
    _active.append(seen)
    try:
        yield seen
    finally:
        _active.remove(seen)
