"""A real day through a real Kannel 1.4.5 (SPEC §17): files in, charges, the daily SMS over the
`kannel` protocol to fakesmsc (a fake SMS centre), Kannel's delivery reports back through the
API's callback, and a farmer's STOP typed at fakesmsc reaching the API through Kannel's
sms-service, with the free confirmation going out through Kannel as well.

Kannel runs as its own processes on free loopback ports (iska_pipelines_tests/kannel.py); the
billing gateway is the project's simulator; the API is the real one on loopback.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.billing.gateway import BillingClient
from iska_pipelines.lib.billing.run import BillingRules, bill_due
from iska_pipelines.lib.sms.encoding import Encoding
from iska_pipelines_tests.api_server import CALLBACK_SECRET, api_on_loopback, api_settings
from iska_pipelines_tests.consent_world import INBOUND_TOKEN
from iska_pipelines_tests.kannel import KannelGateway, kannel_available
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.sms_world import today

pytestmark = pytest.mark.skipif(kannel_available() is not None, reason=kannel_available() or "")

USERNAME, PASSWORD, SHORT_CODE = "iska", "kannel-sendsms-pass", "1400"
FARMERS = {"233240000001": "en", "233240000002": "en", "233240000003": "tw"}
FORECASTS = "gid,lat,lon,fcat24,fcat48\n1,5.60,-0.20,0.3,0.6\n"


def additions() -> str:
    rows = [f"{msisdn},2021-02-05 08:00:00,11,5.61,-0.21,{language}" for msisdn, language in FARMERS.items()]
    return "msisdn,ts,service_id,lat,lon,language\n" + "\n".join(rows) + "\n"


@pytest.fixture
def world(database_url, data_dir, tmp_path, iska, simulator):
    """Kannel (its ports chosen first, so the API can be told where it is), then the API, then
    Kannel started with the API's inbound URL as its sms-service."""
    kannel = KannelGateway(tmp_path / "kannel", USERNAME, PASSWORD)
    settings = api_settings(
        database_url,
        data_dir,
        ISKA_INBOUND_TOKEN=INBOUND_TOKEN,
        SMS_URLS=kannel.sendsms_url,
        SMS_PROTOCOL="kannel",
        SMS_USERNAME=USERNAME,
        SMS_SENDER=SHORT_CODE,
        SMS_TOKEN=PASSWORD,
    )
    with api_on_loopback(settings) as api:
        query = urlencode({"token": INBOUND_TOKEN, "protocol": "kannel"})
        kannel.get_url = f"{api.base_url}{INBOUND_PATH}?{query}&from=%p&text=%a&id=%I"
        with kannel:
            yield kannel, api


def run_day(database_url: str, iska, kannel: KannelGateway, public_url: str):
    resources = {
        "database": IskaDatabase(url=database_url),
        "sms_gateway": SmsGateway(
            urls=kannel.sendsms_url,
            token=PASSWORD,
            protocol="kannel",
            username=USERNAME,
            sender=SHORT_CODE,
            concurrency=4,
            backoff_seconds=0.05,
        ),
        "sms_outbox": SmsOutbox(public_url=public_url, callback_secret=CALLBACK_SECRET, latest_hour=24),
    }
    return sms_job.execute_in_process(
        partition_key=today().isoformat(), resources=resources, instance=iska.instance
    )


def outbox(iska) -> dict[str, sa.Row]:
    rows = iska.rows("SELECT msisdn, msgid, status, text, encoding, kind, delivered_at FROM sms_messages")
    return {f"{r.msisdn}/{r.kind}": r for r in rows}


def test_a_day_through_kannel_is_delivered_and_a_stop_typed_at_the_phone_opts_the_farmer_out(
    world, database_url, iska, simulator
):
    kannel, api = world
    assert iska.ingest(FORECASTS, name="forecasts_kannel.csv").success
    assert iska.ingest(additions(), name="2021-02-05_additions.csv").success
    with BillingClient(simulator.billing_url, SIMULATOR_TOKEN) as client:
        assert bill_due(iska.engine, client, BillingRules()).outcomes["success"] == len(FARMERS)

    assert run_day(database_url, iska, kannel, api.base_url).success

    received = {sms.receiver: sms for sms in kannel.wait_received(len(FARMERS), timeout=30)}
    sent = outbox(iska)
    assert set(received) == set(FARMERS)
    for msisdn in FARMERS:
        row = sent[f"{msisdn}/forecast"]
        assert received[msisdn].text == row.text and received[msisdn].sender == SHORT_CODE
    twi = sent["233240000003/forecast"]
    assert twi.encoding == Encoding.UCS2 and "ɔ" in twi.text  # arrived intact, as UCS-2
    wait_for(lambda: all(r.status == "delivered" for r in outbox(iska).values()), seconds=30)
    assert iska.scalar("SELECT count(*) FROM subscriptions WHERE last_successful_sms_date IS NOT NULL") == 3

    kannel.type_mo("233240000002", SHORT_CODE, "STOP")

    wait_for(
        lambda: (
            iska.scalar("SELECT cancel_reason FROM subscriptions WHERE msisdn = '233240000002'") == "opt_out"
        ),
        seconds=30,
    )
    [confirmation] = [
        sms
        for sms in kannel.wait_received(len(FARMERS) + 1, timeout=30)
        if sms.text.startswith("Iska: you are unsubscribed")
    ]
    assert confirmation.receiver == "233240000002"
    wait_for(lambda: outbox(iska)["233240000002/reply"].status == "delivered", seconds=30)
    inbound = iska.rows("SELECT msisdn, text FROM inbound_messages")
    assert [(r.msisdn, r.text) for r in inbound] == [("233240000002", "STOP")]
    consent = requests.get(
        f"{api.base_url}/subscriptions/api/v1/subscriptions/", params={"msisdn": "233240000002"}, timeout=10
    )
    assert consent.json()["results"][0]["status"] == "cancelled"
