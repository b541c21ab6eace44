"""What the gateway clients ask before each call: may this URL be called now? (SPEC §12, §15)

A `Pacer` holds a call back until its URL's cap allows it and hears about the URL's 429s; the
clients know nothing else of how caps are kept (lib/http/limiter.py keeps them in the
database, shared by every process of a run). Without a cap a URL gets `UNPACED`, which costs
nothing.
"""

from __future__ import annotations

from typing import Protocol


class Pacer(Protocol):
    def wait(self) -> None:
        """Return when one more call to the URL keeps it within its cap."""

    def throttled(self, retry_after: float | None) -> None:
        """The URL answered 429: slow it down (for every process sharing the cap)."""


class Pacers(Protocol):
    def for_url(self, url: str) -> Pacer: ...


class _Unpaced:
    def wait(self) -> None:
        return None

    def throttled(self, retry_after: float | None) -> None:
        return None


UNPACED: Pacer = _Unpaced()


class NoCaps:
    """Every URL unpaced: the default when no *_MAX_TPS is set."""

    def for_url(self, url: str) -> Pacer:
        return UNPACED
