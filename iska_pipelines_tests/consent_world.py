"""A subscriber texting ISKA in tests: the real API on loopback with an inbound token, the real
simulator as its SMS gateway (delivery reports back to the API) and as the subscriber's phone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.lib.db.schema import consent_events, inbound_messages, sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines_tests.api_server import RunningApi, api_on_loopback, api_settings
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN, RunningSimulator
from iska_pipelines_tests.sms_world import add_subscriber

INBOUND_TOKEN = "test-inbound-token"


@dataclass
class Phone:
    """ISKA's API and the simulator, as a subscriber's phone and the gateway see them."""

    api: RunningApi
    simulator: RunningSimulator
    engine: sa.Engine

    @property
    def inbound_url(self) -> str:
        return f"{self.api.base_url}{INBOUND_PATH}"

    def post(self, body: dict, token: str | None = INBOUND_TOKEN, form: bool = False) -> requests.Response:
        """What a gateway posts: JSON, or a form."""
        params = {} if token is None else {"token": token}
        if form:
            return requests.post(self.inbound_url, params=params, data=body, timeout=10)
        return requests.post(self.inbound_url, params=params, json=body, timeout=10)

    def text(
        self, msisdn: str, text: str, message_id: str | None = None, protocol: str | None = None
    ) -> dict:
        """The subscriber texts ISKA: the simulator posts it the way a gateway of `protocol`
        (default ISKA's own) does."""
        body = {"msisdn": msisdn, "text": text} | ({"id": message_id} if message_id else {})
        body |= {"protocol": protocol} if protocol else {}
        response = requests.post(f"{self.simulator.base_url}/simulator/inbound", json=body, timeout=15)
        response.raise_for_status()
        said = response.json()
        assert said["iska_status"] == 200, said
        return said["iska_answer"]

    def subscription(self, msisdn: str) -> sa.Row:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(subscriptions).where(subscriptions.c.msisdn == msisdn)).one()

    def replies(self, msisdn: str | None = None) -> list[sa.Row]:
        query = (
            sa.select(sms_messages).where(sms_messages.c.kind == "reply").order_by(sms_messages.c.created_at)
        )
        if msisdn is not None:
            query = query.where(sms_messages.c.msisdn == msisdn)
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def inbound(self) -> list[sa.Row]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(inbound_messages).order_by(inbound_messages.c.id)))

    def consent(self, msisdn: str) -> list[tuple[str, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(consent_events.c.event, consent_events.c.source)
                .where(consent_events.c.msisdn == msisdn)
                .order_by(consent_events.c.id)
            )
            return [tuple(row) for row in rows]

    def age_inbound(self, hours: float) -> None:
        """Every stored inbound message moved `hours` into the past, as if that time had gone by."""
        with self.engine.begin() as connection:
            for row in connection.execute(
                sa.select(inbound_messages.c.id, inbound_messages.c.received_at)
            ).all():
                connection.execute(
                    inbound_messages.update()
                    .where(inbound_messages.c.id == row.id)
                    .values(received_at=row.received_at - timedelta(hours=hours))
                )


def subscribe(
    engine: sa.Engine,
    msisdn: str,
    *,
    day: date,
    paid: bool = True,
    language: str | None = None,
    region: str | None = None,
) -> int:
    """An active subscriber as an applied additions file (three days ago) and a charge leave them."""
    since = utcnow() - timedelta(days=3)
    return add_subscriber(
        engine, msisdn, 1, day=day, paid=paid, language=language, region=region, since=since
    )


@contextmanager
def phone_for(database_url, data_dir, simulator, engine, **env: str) -> Iterator[Phone]:
    """The API on loopback with an inbound token (and `env`), the simulator posting to it."""
    settings = api_settings(
        database_url,
        str(data_dir),
        **{
            "ISKA_INBOUND_TOKEN": INBOUND_TOKEN,
            "SMS_URLS": simulator.sms_url("a"),
            "SMS_TOKEN": SIMULATOR_TOKEN,
            "MAX_SMS_TRY_LIMIT": "2",
            **env,
        },
    )
    with api_on_loopback(settings) as api:
        simulator.configure(
            report_delay_seconds=0, inbound_url=f"{api.base_url}{INBOUND_PATH}?token={INBOUND_TOKEN}"
        )
        yield Phone(api, simulator, engine)


@pytest.fixture
def phone(database_url, data_dir, simulator, engine) -> Iterator[Phone]:
    with phone_for(database_url, data_dir, simulator, engine) as running:
        yield running
