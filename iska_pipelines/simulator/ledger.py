"""What the simulator remembers: answers by idempotency key, and counts for `/stats`.

The ledger is the proof of exactly-once behaviour: a charge or a message is counted when it is
first performed, never when its stored answer is replayed for a repeated key.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from iska_pipelines.simulator.outbound import Outbound


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, Answer] = {}
        self._scripts: dict[tuple[str, str], list[str]] = {}
        self._faults: list[str] = []
        self._counts: dict[str, Counter] = defaultdict(Counter)
        self._tallies: Counter = Counter()
        self._per_msisdn: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self._texts: dict[str, str] = {}
        self._arrivals: dict[str, list[float]] = defaultdict(list)
        self._admitted: dict[str, deque[float]] = defaultdict(deque)
        self._momo: dict[str, dict] = {}  # requesttopay by X-Reference-Id
        self._held: list[tuple[str, str, Outbound]] = []  # (reference, fate, callback) kept back

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

    def momo_create(self, reference: str, request: dict) -> bool:
        """Keep a new requesttopay; False when the reference exists (MoMo's 409)."""
        with self._lock:
            if reference in self._momo:
                return False
            self._momo[reference] = dict(request)
            return True

    def momo_request(self, reference: str) -> dict | None:
        with self._lock:
            found = self._momo.get(reference)
            return None if found is None else dict(found)

    def momo_settle(self, reference: str, status: str, reason: str | None) -> dict | None:
        """The payer answered: PENDING -> status, once; the request as settled, else None."""
        with self._lock:
            found = self._momo.get(reference)
            if found is None or found["status"] != "PENDING":
                return None
            found["status"] = status
            if reason:
                found["reason"] = reason
            if status == "SUCCESSFUL":
                found["financialTransactionId"] = str(uuid.uuid4().int % 10**10)
            return dict(found)

    def hold(self, reference: str, fate: str, callback: Outbound) -> None:
        with self._lock:
            self._held.append((reference, fate, callback))

    def take_held(self) -> list[tuple[str, str, Outbound]]:
        with self._lock:
            held, self._held = self._held, []
            return held

    def set_scripts(self, scripts: dict[str, list[str]], gateway: str = "") -> None:
        """The scripted answers of one gateway (`""`: the iska billing gateway, `"momo"`)."""
        with self._lock:
            kept = {key: answers for key, answers in self._scripts.items() if key[0] != gateway}
            self._scripts = kept | {(gateway, msisdn): list(answers) for msisdn, answers in scripts.items()}

    def next_scripted(self, msisdn: str, gateway: str = "") -> str | None:
        with self._lock:
            answers = self._scripts.get((gateway, msisdn))
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
                    # MoMo: every requesttopay by reference, as the gateway holds it
                    "momo": {ref: dict(request) for ref, request in self._momo.items()},
                    "held_callbacks": [ref for ref, _fate, _callback in self._held],
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
