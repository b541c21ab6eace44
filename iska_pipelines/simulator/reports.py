"""Delivery reports sent after a delay, from one thread, in whatever form each protocol uses.

A heap of due reports and a condition variable: the request handlers never wait on the callback
receiver, and reports go out in due order (those due at the same moment in the order they were
scheduled) however many messages are pending. A report is any HTTP request (`Outbound`): the
`iska` protocol's JSON POST to the message's callback, Kannel's GET of its dlr-url, Twilio's
signed form... Each is counted under `reports` in `/stats`: `sent`, `answered_<code>` or
`unreachable`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

import requests

from iska_pipelines.simulator.ledger import Ledger
from iska_pipelines.simulator.outbound import Outbound


class ReportSender:
    def __init__(self, ledger: Ledger, timeout_seconds: float = 5.0) -> None:
        self._ledger = ledger
        self._timeout = timeout_seconds
        self._due: list[tuple[float, int, Outbound | Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sms-delivery-reports", daemon=True)
        self._thread.start()

    def schedule(self, callback: str, report: dict, delay_seconds: float) -> None:
        """POST `report` as JSON to `callback` (the `iska` protocol's report) after the delay."""
        self.send_later(Outbound("POST", callback, json=report), delay_seconds)

    def call_later(self, action: Callable[[], None], delay_seconds: float) -> None:
        """Run `action` on the sender's thread after the delay (a MoMo payer answering)."""
        self.send_later(action, delay_seconds)

    def send_later(self, report: Outbound | Callable[[], None], delay_seconds: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay_seconds, next(self._order), report))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=self._timeout + 1)
        self._session.close()

    def _next_due(self) -> Outbound | Callable[[], None] | None:
        with self._wake:
            while not self._stopped:
                if self._due and self._due[0][0] <= time.monotonic():
                    return heapq.heappop(self._due)[2]
                wait = self._due[0][0] - time.monotonic() if self._due else None
                self._wake.wait(timeout=wait)
            return None

    def _run(self) -> None:
        while (report := self._next_due()) is not None:
            if not isinstance(report, Outbound):
                try:
                    report()
                except Exception:  # noqa: BLE001 - one failed action must not stop the reports
                    self._ledger.count("reports", "action_failed")
                continue
            try:
                response = report.send(self._session, self._timeout)
                outcome = "sent" if response.ok else f"answered_{response.status_code}"
            except requests.RequestException:
                outcome = "unreachable"
            self._ledger.count("reports", outcome)
