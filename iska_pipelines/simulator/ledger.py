"""What the simulator remembers: answers by idempotency key, and counts for `/stats`.

The ledger is the proof of exactly-once behaviour: a charge or a message is counted when it is
first performed, never when its stored answer is replayed for a repeated key.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, Answer] = {}
        self._scripts: dict[str, list[str]] = {}
        self._faults: list[str] = []
        self._counts: dict[str, Counter] = defaultdict(Counter)
        self._tallies: Counter = Counter()
        self._per_msisdn: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self._texts: dict[str, str] = {}
        self._arrivals: dict[str, list[float]] = defaultdict(list)
        self._admitted: dict[str, deque[float]] = defaultdict(deque)

    def arrive(self, gateway: str, max_tps: float) -> bool:
        """Record a request's arrival time at `gateway`; False when it is one more than
        `max_tps` admitted in the last second (it is then answered 429 and not admitted)."""
        now = time.time()
        with self._lock:
            self._arrivals[gateway].append(now)
            if max_tps <= 0:
                return True
            admitted = self._admitted[gateway]
            while admitted and admitted[0] <= now - 1.0:
                admitted.popleft()
            if len(admitted) >= max_tps:
                return False
            admitted.append(now)
            return True

    def arrivals(self, since: float = 0.0) -> dict[str, list[float]]:
        """Every request's arrival time (epoch seconds) per gateway, from `since` on."""
        with self._lock:
            return {gateway: [t for t in times if t >= since] for gateway, times in self._arrivals.items()}

    def answer_for(self, scope: str, key: str) -> Answer | None:
        with self._lock:
            return self._answers.get(f"{scope}:{key}")

    def remember(self, scope: str, key: str, answer: Answer) -> Answer:
        """Store the first answer for a key; a racing duplicate gets the stored one back."""
        with self._lock:
            return self._answers.setdefault(f"{scope}:{key}", answer)

    def set_scripts(self, scripts: dict[str, list[str]]) -> None:
        with self._lock:
            self._scripts = {msisdn: list(answers) for msisdn, answers in scripts.items()}

    def next_scripted(self, msisdn: str) -> str | None:
        with self._lock:
            answers = self._scripts.get(msisdn)
            return answers.pop(0) if answers else None

    def set_faults(self, faults: list[str]) -> None:
        with self._lock:
            self._faults = list(faults)

    def next_fault(self) -> str:
        """The planned fault for this request ('' when none is planned)."""
        with self._lock:
            return self._faults.pop(0) if self._faults else ""

    def count(self, scope: str, event: str, msisdn: str | None = None, n: int = 1) -> None:
        with self._lock:
            self._counts[scope][event] += n
            if msisdn is not None:
                self._per_msisdn[scope][event][msisdn] += n

    def keep_text(self, msisdn: str, text: str) -> None:
        """The last text an msisdn was sent, so tests can read what a subscriber received."""
        with self._lock:
            self._texts[msisdn] = text

    def tally(self, scope: str, key: str) -> int:
        """Count one more request for a key and return how many there have been."""
        with self._lock:
            self._tallies[f"{scope}:{key}"] += 1
            return self._tallies[f"{scope}:{key}"]

    def stats(self) -> dict:
        with self._lock:
            billing = self._per_msisdn["billing"]
            sms = self._per_msisdn["sms"]
            return {
                "billing": {
                    "counts": dict(self._counts["billing"]),
                    "charges": dict(billing["charged"]),
                    "declines": dict(billing["declined"]),
                },
                "sms": {
                    "counts": dict(self._counts["sms"]),
                    "messages": dict(sms["accepted"]),
                    "rejected": dict(sms["rejected"]),
                    "segments": dict(sms["segments"]),  # paid segments accepted, per msisdn
                    "texts": dict(self._texts),
                    "reports": dict(self._counts["reports"]),
                },
            }
