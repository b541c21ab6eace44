"""A day's SMS in each hosted gateway protocol, end to end (SPEC §17): `sms_job` sends through the
simulator playing Africa's Talking, Twilio, Infobip or Kannel field for field, the simulator's
delivery reports come back in that protocol to the real API and deliver the rows, a re-run of
the day sends nothing twice, and a farmer's STOP in that protocol opts them out, with the
confirmation going out through the same protocol."""

from __future__ import annotations

import pytest

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.sms.callbacks import account_report_url
from iska_pipelines_tests.api_server import CALLBACK_SECRET
from iska_pipelines_tests.consent_world import phone_for, subscribe
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.sms_world import add_forecast, messages, today

FARMERS = ["233260000001", "233260000002", "233260000003"]
ACCOUNT = {"twilio": "AC0123456789abcdef0123456789abcdef"}
PROTOCOLS = ["africastalking", "twilio", "infobip", "kannel"]


def gateway_resource(simulator, protocol: str) -> SmsGateway:
    return SmsGateway(
        urls=simulator.sms_url("gw"),
        token=SIMULATOR_TOKEN,
        protocol=protocol,
        username=ACCOUNT.get(protocol, "iska"),
        sender="1400",
        concurrency=4,
        backoff_seconds=0.01,
    )


def run_day(database_url, instance, simulator, protocol: str, public_url: str):
    resources = {
        "database": IskaDatabase(url=database_url),
        "sms_gateway": gateway_resource(simulator, protocol),
        "sms_outbox": SmsOutbox(public_url=public_url, callback_secret=CALLBACK_SECRET, latest_hour=24),
    }
    return sms_job.execute_in_process(
        partition_key=today().isoformat(), resources=resources, instance=instance
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_day_in_each_protocol_is_delivered_once_and_a_stop_in_it_opts_out(
    protocol, database_url, data_dir, simulator, engine, instance
):
    add_forecast(engine, 1, "0.3000", "0.6000")
    for msisdn in FARMERS:
        subscribe(engine, msisdn, day=today())
    env = {
        "SMS_URLS": simulator.sms_url("gw"),
        "SMS_PROTOCOL": protocol,
        "SMS_USERNAME": ACCOUNT.get(protocol, "iska"),
        "SMS_SENDER": "1400",
    }
    with phone_for(database_url, data_dir, simulator, engine, **env) as phone:
        public_url = phone.api.base_url
        simulator.configure(
            africastalking_callback_url=account_report_url(public_url, "africastalking", CALLBACK_SECRET)
        )

        assert run_day(database_url, instance, simulator, protocol, public_url).success
        wait_for(lambda: [m.status for m in messages(engine, today())] == ["delivered"] * len(FARMERS))
        assert run_day(database_url, instance, simulator, protocol, public_url).success  # the same day again

        accepted = simulator.stats()["sms"]["messages"]
        assert {msisdn: accepted.get(msisdn) for msisdn in FARMERS} == dict.fromkeys(FARMERS, 1)
        refs = {m.gateway_ref for m in messages(engine, today())}
        assert refs == {None} if protocol == "kannel" else len(refs - {None}) == len(FARMERS)

        phone.text(FARMERS[0], "STOP", protocol=protocol)
        row = phone.subscription(FARMERS[0])
        assert (row.status, row.cancel_reason) == ("cancelled", "opt_out")
        wait_for(lambda: [r.status for r in phone.replies(FARMERS[0])] == ["delivered"])
