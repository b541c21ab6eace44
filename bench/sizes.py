"""How big each measurement is: full (`make bench`), quick (/10, CI) or any scale in between."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    scale: float
    repeats: int

    def _n(self, full: int, minimum: int) -> int:
        return max(minimum, round(full * self.scale))

    @property
    def grid(self) -> int:  # forecast rows
        return self._n(1_000_000, 2_000)

    @property
    def old_method_sample(self) -> int:  # per-row select-then-insert/update, extrapolated
        return self._n(20_000, 200)

    @property
    def additions(self) -> int:
        return self._n(100_000, 500)

    @property
    def nearest_sql_sample(self) -> int:  # per-row nearest-point query, extrapolated
        return self._n(20, 3)

    @property
    def billing(self) -> int:
        return self._n(10_000, 200)

    @property
    def sms(self) -> int:
        return self._n(100_000, 500)

    @property
    def sms_in_process(self) -> int:  # one process tops out near 1,200/s: a smaller day suffices
        return self._n(20_000, 500)

    @property
    def capped(self) -> int:  # calls of a capped run: ~10 s at the bench's caps
        return self._n(2_000, 300)

    @property
    def kannel(self) -> int:  # messages through a real Kannel and fakesmsc, and as many via iska
        return self._n(10_000, 200)

    @property
    def outbox(self) -> int:  # paid subscribers whose day is planned
        return self._n(1_000_000, 1_000)

    @property
    def sms_grid(self) -> int:  # forecast points the SMS subscribers point at
        return self._n(1_000, 50)

    @property
    def archived(self) -> int:  # files already in archive/ when the sensor ticks
        return self._n(10_000, 100)

    new_files: int = 10


FULL = Sizes(scale=1.0, repeats=3)
QUICK = Sizes(scale=0.1, repeats=1)
