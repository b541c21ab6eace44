"""MoMo billing end to end (SPEC §18): `billing_job` with BILLING_PROTOCOL=momo against the
simulator's MoMo Collections, the real API on 127.0.0.1 receiving its callbacks, and the real
`pending_charges_poll` sensor; time passes by moving the attempts' clocks back, as
test_defs_billing.py does for the decline rest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.defs.billing.poll import pending_charges_poll
from iska_pipelines.lib.billing.signing import MOMO_CALLBACK_PATH
from iska_pipelines.lib.db.schema import billing_attempts
from iska_pipelines.lib.db.timestamps import as_utc
from iska_pipelines.lib.sms.signing import sign
from iska_pipelines_tests.api_server import CALLBACK_SECRET, RunningApi, api_on_loopback, api_settings
from iska_pipelines_tests.simulator_server import RunningSimulator
from iska_pipelines_tests.test_defs_billing import Billing

MAX_TRIES = 2  # MAX_BILLING_TRY_LIMIT of the run and of the API's callback route alike
CLOCKS = ("attempted_at", "settled_at", "polled_at")


@dataclass
class Momo:
    billing: Billing
    api: RunningApi
    simulator: RunningSimulator

    def run(self, **gateway) -> dg.ExecuteInProcessResult:
        return self.billing.run(**gateway)

    def poll(self, **gateway) -> str:
        """One tick of the poll sensor; what it says it did."""
        with dg.build_sensor_context(
            instance=self.billing.instance, resources=self.billing.resources(**gateway)
        ) as context:
            return pending_charges_poll(context).skip_message

    def attempts(self) -> list[sa.Row]:
        return self.billing.attempts()

    def outcomes(self) -> list[str]:
        return [a.outcome for a in self.attempts()]

    def minutes_pass(self, minutes: float) -> None:
        """As if `minutes` had gone by since every attempt was asked, looked up or settled."""
        shift = timedelta(minutes=minutes)
        with self.billing.engine.begin() as connection:
            for row in connection.execute(sa.select(billing_attempts)).all():
                moved = {c: as_utc(getattr(row, c)) - shift for c in CLOCKS if getattr(row, c) is not None}
                connection.execute(
                    sa.update(billing_attempts).where(billing_attempts.c.id == row.id).values(**moved)
                )

    def callback(self, reference: str, body: dict, sig: str | None = None, method: str = "POST"):
        """A callback as MoMo makes it, to the URL ISKA gave (signed unless told otherwise)."""
        sig = sign(reference, CALLBACK_SECRET) if sig is None else sig
        return requests.request(
            method,
            f"{self.api.base_url}{MOMO_CALLBACK_PATH}",
            params={"ref": reference, "sig": sig},
            json=body,
            timeout=10,
        )


def momo_gateway(simulator: RunningSimulator, api: RunningApi) -> dict:
    return {
        "protocol": "momo",
        "url": simulator.momo_url,
        "public_url": api.base_url,
        "callback_secret": CALLBACK_SECRET,
    }


@pytest.fixture
def momo(database_url, simulator, tmp_path) -> Iterator[Momo]:
    """Callbacks held back by default: each test says when they arrive."""
    settings = api_settings(database_url, tmp_path / "api-data", MAX_BILLING_TRY_LIMIT=str(MAX_TRIES))
    simulator.configure(momo_hold_callbacks=True, momo_settle_seconds=0)
    with api_on_loopback(settings) as api:
        billing = Billing(database_url, simulator)
        billing.gateway |= momo_gateway(simulator, api)
        billing.policy["max_tries"] = MAX_TRIES
        yield Momo(billing, api, simulator)
