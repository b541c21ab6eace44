"""The transport faults the simulator injects before a request reaches its gateway logic.

A fault is either planned (the `faults` knob: one per request, in order) or drawn at the
configured rates from a seeded random source. The faults are the same for every gateway; how
they are worded (a JSON `{"status": "error"}`, Kannel's plain text, Twilio's error object...)
is the gateway's `Wording`.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Protocol

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Ledger

AFTER_THE_FACT = "charge_then_timeout"  # decided by the gateway logic, once it has acted


class Wording(Protocol):
    """How a gateway words an error answer and a broken 2xx body."""

    def refusal(self, status_code: int, detail: str) -> Response: ...

    def malformed(self) -> Response: ...


class JsonWording:
    """The billing gateway's and the `iska` SMS protocol's: `{"status": "error", "detail"}`."""

    def refusal(self, status_code: int, detail: str) -> Response:
        return JSONResponse({"status": "error", "detail": detail}, status_code=status_code)

    def malformed(self) -> Response:
        return PlainTextResponse('{"status": "succ', status_code=200, media_type="application/json")


JSON_WORDING = JsonWording()


class Dice:
    """A seeded random source shared by the request handlers."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate


def choose_fault(knobs: Knobs, dice: Dice, ledger: Ledger, planned: bool = True) -> str:
    """`planned=False`: only the drawn faults (MoMo's status lookups leave the planned ones to
    the requests that ask for a charge, whose order a test can know)."""
    chosen = ledger.next_fault() if planned else ""
    if chosen:
        return chosen
    for fault, rate in (
        ("timeout", knobs.timeout_rate),
        ("5xx", knobs.error_rate),
        ("429", knobs.throttle_rate),
        ("malformed", knobs.malformed_rate),
        (AFTER_THE_FACT, knobs.charge_then_timeout_rate),
    ):
        if dice.roll(rate):
            return fault
    return ""


def over_rate(
    knobs: Knobs, ledger: Ledger, gateway: str, scope: str, wording: Wording = JSON_WORDING
) -> Response | None:
    """Record the request's arrival; a 429 when `gateway` is above its `max_tps`."""
    if ledger.arrive(gateway, knobs.max_tps):
        return None
    ledger.count(scope, "fault_over_max_tps")
    return throttled(knobs, wording, f"more than {knobs.max_tps:g} requests per second")


def throttled(knobs: Knobs, wording: Wording, detail: str) -> Response:
    """A 429 with `Retry-After`, in the gateway's words."""
    response = wording.refusal(429, detail)
    response.headers["Retry-After"] = _seconds(knobs.retry_after_seconds)
    return response


async def hang(knobs: Knobs, wording: Wording = JSON_WORDING) -> Response:
    """Leave the client waiting; whatever it gets afterwards it has long stopped reading."""
    await asyncio.sleep(knobs.hang_seconds)
    return wording.refusal(504, "gateway timeout")


async def injected_fault(
    knobs: Knobs,
    dice: Dice,
    ledger: Ledger,
    scope: str,
    wording: Wording = JSON_WORDING,
    planned: bool = True,
) -> tuple[Response | None, str]:
    """Sleep the latency, then answer with a fault, or (None, fault) to let the gateway act."""
    if knobs.latency_ms:
        await asyncio.sleep(knobs.latency_ms / 1000)
    fault = choose_fault(knobs, dice, ledger, planned)
    if fault and fault != AFTER_THE_FACT:
        ledger.count(scope, f"fault_{fault}")
    if fault == "timeout":
        return await hang(knobs, wording), fault
    if fault == "5xx":
        return wording.refusal(503, "service unavailable"), fault
    if fault == "429":
        return throttled(knobs, wording, "too many requests"), fault
    if fault == "malformed":
        return wording.malformed(), fault
    return None, fault


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
