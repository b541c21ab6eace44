"""Per-URL throughput caps shared by every batch and process of a run (SPEC §12, §15).

The cap is kept as a generic cell rate: the `gateway_pacing` row of a URL holds the next free
call slot (epoch seconds); slots are `1 / pace` apart with `pace` a little under the cap
(`HEADROOM`). A process does not ask the database per call: it leases a block of consecutive
slots (about `LEASE_SECONDS` worth) with one upsert that moves the row past them, and hands
them out to its threads, each of which sleeps until its slot. Leases of different processes
never overlap, so every call of every process to that URL is at least `1 / pace` after the
previous one, and any one-second window at the gateway holds at most `⌈pace × (1 + d)⌉` calls,
where d is how much the gateway's arrival times are bunched against the slots (our threads waking
late, the network, the gateway's own scheduling); the headroom keeps that within the cap for d up
to about 40 ms, and costs 4% of the cap (SPEC §12 asks for at least 95% of it). A slot whose time
has passed by more than `LATE_SECONDS`, when it is handed out or when its thread wakes, is
dropped, not used late (a pile of late slots would be a burst). A 429 from the URL pushes its row out by the Retry-After
(1 s without one) and drops this process's lease, so every process backs off together.

Why not pyrate-limiter: its PostgreSQL bucket needs psycopg 3 and psycopg_pool (ISKA talks
psycopg2 through SQLAlchemy) and, like its SQLite bucket, writes one row per acquired call: a
database round trip per request, which alone would cost more client CPU than the HTTP call
(SPEC §12 wants the whole call within 1.2× of urllib3's floor). The lease above costs one
statement per ~LEASE_SECONDS per process on either database.

Clocks: slots are wall-clock epoch seconds of the calling hosts (NTP-synchronised hosts agree
to well under the headroom).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from iska_pipelines.lib.http.pacing import UNPACED, Pacer

HEADROOM = 0.04  # pace at 96% of the cap: room for calls that arrive a little after their slot
LEASE_SECONDS = 0.2  # slots leased per database statement, in seconds of calls
LATE_SECONDS = 0.01  # a slot older than this is dropped rather than used
THROTTLE_SECONDS = 1.0  # a 429 without Retry-After pauses the URL this long
MAX_THROTTLE_SECONDS = 60.0

LEASE = sa.text("""
    INSERT INTO gateway_pacing (url, next_slot) VALUES (:url, :now + :span)
    ON CONFLICT (url) DO UPDATE SET next_slot =
        CASE WHEN gateway_pacing.next_slot > :now THEN gateway_pacing.next_slot ELSE :now END + :span
    RETURNING next_slot
""")
PAUSE = sa.text("""
    INSERT INTO gateway_pacing (url, next_slot) VALUES (:url, :until)
    ON CONFLICT (url) DO UPDATE SET next_slot =
        CASE WHEN gateway_pacing.next_slot > :until THEN gateway_pacing.next_slot ELSE :until END
""")


class SharedCap:
    """One URL's cap, shared through the database; thread-safe."""

    def __init__(
        self,
        engine: sa.Engine,
        url: str,
        max_tps: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_tps <= 0:
            raise ValueError(f"a cap must be above 0 calls per second, got {max_tps}")
        self.url = url[:255]
        self.max_tps = max_tps
        self.interval = 1.0 / (max_tps * (1 - HEADROOM))
        self._lease_size = max(1, round(LEASE_SECONDS / self.interval))
        self._engine = engine
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self._left = 0

    def wait(self) -> None:
        while True:
            slot = self._take_slot()
            delay = slot - self._clock()
            if delay > 0:
                self._sleep(delay)
            if self._clock() - slot <= LATE_SECONDS:
                return
            # woke too late (a busy interpreter): that slot is spent, the call takes the next one

    def _take_slot(self) -> float:
        with self._lock:
            now = self._clock()
            if self._left and self._next < now - LATE_SECONDS:
                dropped = min(self._left, math.ceil((now - LATE_SECONDS - self._next) / self.interval))
                self._next += dropped * self.interval
                self._left -= dropped
            if not self._left:
                self._lease(now)
            slot = self._next
            self._next += self.interval
            self._left -= 1
            return slot

    def throttled(self, retry_after: float | None) -> None:
        pause = min(MAX_THROTTLE_SECONDS, retry_after if retry_after else THROTTLE_SECONDS)
        with self._lock:
            self._left = 0
            with self._engine.begin() as connection:
                connection.execute(PAUSE, {"url": self.url, "until": self._clock() + pause})

    def _lease(self, now: float) -> None:
        span = self._lease_size * self.interval
        with self._engine.begin() as connection:
            end = float(connection.execute(LEASE, {"url": self.url, "now": now, "span": span}).scalar_one())
        self._next = end - span
        self._left = self._lease_size


class DatabaseCaps:
    """The caps of a run's gateway URLs (0 or absent: no cap), kept in `engine`'s database."""

    def __init__(self, engine: sa.Engine, caps: Mapping[str, float]) -> None:
        self._caps = {url: SharedCap(engine, url, tps) for url, tps in caps.items() if tps > 0}

    def for_url(self, url: str) -> Pacer:
        return self._caps.get(url, UNPACED)
