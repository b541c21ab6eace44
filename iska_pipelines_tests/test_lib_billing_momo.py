"""MoMo billing without Dagster (SPEC §18): the reference of an intent, the prices and the
settings that configure it, the client against the real simulator, reading a callback, and
settling a pending charge once, whoever comes first."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from iska_pipelines.lib.billing.callbacks import BadCallback, parse_callback
from iska_pipelines.lib.billing.due import DueCharge, select_due
from iska_pipelines.lib.billing.gateway import ChargeResult
from iska_pipelines.lib.billing.momo import MomoAccount, MomoClient
from iska_pipelines.lib.billing.outcomes import Answered, record_answers
from iska_pipelines.lib.billing.prices import parse_price
from iska_pipelines.lib.billing.references import reference_for
from iska_pipelines.lib.billing.settle import Settlement, SettleOutcome, SettleRules, settle
from iska_pipelines.lib.db.schema import billing_attempts, subscriptions
from iska_pipelines.lib.http.client import Backoff
from iska_pipelines.lib.settings import DEFAULTS, ConfigurationError, Settings
from iska_pipelines.lib.vocabulary import ChargeOutcome, MomoStatus, Plan, SettledBy
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.test_lib_billing import NOW, TODAY, add_subscription

QUICK = Backoff(tries=3, base_seconds=0.02, cap_seconds=1.0)
PRICES = {Plan.DAILY: parse_price("0.20 GHS"), Plan.WEEKLY: parse_price("1.00 GHS")}
RULES = SettleRules(max_tries=2, regions=DEFAULTS.regions())


def charge(subscription_id=1, joins=1, sub_date=NOW, period=TODAY, declines=0, msisdn="233020000001"):
    return DueCharge(subscription_id, msisdn, Plan.DAILY, sub_date, period, declines, joins)


# --- the reference --------------------------------------------------------------------------


def test_an_intent_has_one_reference_a_uuid4_and_any_other_intent_another():
    first = charge()
    assert first.reference == charge().reference == reference_for(first.key)
    parsed = uuid.UUID(first.reference)
    assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    others = [
        charge(subscription_id=2),
        charge(joins=2),  # a rejoin
        charge(sub_date=NOW + timedelta(seconds=1)),
        charge(period=TODAY + timedelta(days=1)),  # the next billing period
        charge(declines=1),  # asked again after a decline
    ]
    assert len({first.reference, *(o.reference for o in others)}) == 1 + len(others)


# --- prices and settings --------------------------------------------------------------------


def test_a_price_is_an_amount_and_a_currency():
    assert parse_price("0.20 GHS").amount == Decimal("0.20")
    assert (parse_price("1 EUR").amount_text, parse_price("1 EUR").currency) == ("1", "EUR")
    for bad in ("0.20", "GHS 0.20", "0 GHS", "-1 GHS", "0.205 GHS", "1 ghs", "NaN GHS"):
        with pytest.raises(ValueError):
            parse_price(bad)


def test_momo_without_a_billing_url_bills_the_simulator_s_momo_and_iska_is_unchanged():
    assert DEFAULTS.billing_protocol == "iska" and DEFAULTS.billing_url.endswith("/billing")
    momo = Settings.from_env({"BILLING_PROTOCOL": "momo"})
    assert momo.billing_url == "http://127.0.0.1:8010/collection/v1_0/requesttopay"
    assert (momo.billing_poll_minutes, momo.billing_pending_hours) == (10, 24)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BILLING_PROTOCOL": "momo", "BILLING_URL": "http://gw/billing"}, "BILLING_URL"),
        ({"BILLING_PROTOCOL": "airtel"}, "BILLING_PROTOCOL"),
        ({"BILLING_PRICE_DAILY": "20 pesewas"}, "BILLING_PRICE_DAILY"),
        ({"BILLING_PRICE_WEEKLY": "1.5"}, "BILLING_PRICE_WEEKLY"),
        ({"ISKA_BILLING_POLL_MINUTES": "0"}, "ISKA_BILLING_POLL_MINUTES"),
        (
            {"ISKA_BILLING_PENDING_HOURS": "1", "ISKA_BILLING_POLL_MINUTES": "90"},
            "ISKA_BILLING_PENDING_HOURS",
        ),
    ],
)
def test_a_bad_momo_setting_stops_start_up_naming_its_variable(env, named):
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


# --- the client against the simulator -------------------------------------------------------


def momo_client(simulator, **account) -> MomoClient:
    fields = {
        "url": simulator.momo_url,
        "token": SIMULATOR_TOKEN,
        "target_environment": "sandbox",
        "prices": PRICES,
        "public_url": "http://127.0.0.1:9",
        "callback_secret": "s",
    } | account
    return MomoClient(MomoAccount(**fields), pool_size=2, timeout_seconds=0.5, backoff=QUICK)


def test_a_request_is_pending_and_asking_again_finds_its_status_instead_of_charging(simulator):
    simulator.configure(momo_settle_seconds=0)
    with momo_client(simulator) as client:
        first = client.ask(charge())
        again = client.ask(charge())
    assert (first.outcome, first.http_status, first.reference) == ("pending", 202, charge().reference)
    assert (again.outcome, again.http_status) == ("success", 200)  # the payer approved meanwhile
    assert simulator.charges() == {"233020000001": 1}
    assert simulator.billing_counts()["duplicates"] == 1


def test_an_odd_2xx_is_asked_again_under_the_same_reference(simulator):
    simulator.configure(faults=["malformed"])  # a 200 with a broken body: not MoMo's 202
    with momo_client(simulator) as client:
        result = client.ask(charge())
    assert (result.outcome, result.tries) == ("pending", 2)
    assert simulator.billing_counts()["requested"] == 1


def test_a_gateway_that_keeps_failing_is_an_error_and_a_wrong_token_an_auth_error(simulator):
    simulator.configure(error_rate=1.0)
    with momo_client(simulator) as client:
        assert client.ask(charge()).outcome == "error"
    simulator.configure(error_rate=0.0)
    with momo_client(simulator, token="wrong") as client:
        assert client.ask(charge()).outcome == "auth_error"
    assert simulator.momo_requests() == {}


def test_a_lookup_says_what_the_gateway_says(simulator):
    simulator.configure(momo_settle_seconds=0, momo_script={"233020000001": ["decline"]})
    with momo_client(simulator) as client:
        asked = client.ask(charge())
        found = client.lookup(asked.reference)
        unknown = client.lookup(str(uuid.uuid4()))
    assert found.outcome == "declined" and "NOT_ENOUGH_FUNDS" in found.excerpt
    assert (unknown.outcome, unknown.http_status) == ("error", 404)


# --- reading a callback ---------------------------------------------------------------------


def test_a_callback_names_its_charge_and_how_it_ended():
    reference = str(uuid.uuid4())
    failed = parse_callback(
        b'{"status": "FAILED", "reason": {"code": "PAYER_NOT_FOUND", "message": "no"}}', reference
    )
    assert (failed.reference, failed.status, failed.reason) == (
        reference,
        MomoStatus.FAILED,
        "PAYER_NOT_FOUND",
    )
    assert failed.settlement() == Settlement(
        reference, ChargeOutcome.DECLINED, failed.excerpt, SettledBy.CALLBACK
    )
    by_body = parse_callback(f'{{"externalId": "{reference}", "status": "successful"}}'.encode(), None)
    assert by_body.reference == reference and by_body.settlement().outcome == "success"
    assert parse_callback(b'{"status": "PENDING"}', reference).settlement() is None


@pytest.mark.parametrize(
    ("body", "ref"),
    [
        (b'{"status": "SUCCESSFUL"}', None),  # no reference anywhere
        (b'{"status": "SUCCESSFUL"}', "not-a-uuid"),
        (b'{"status": "PAID"}', str(uuid.uuid4())),
        (f'{{"externalId": "{uuid.uuid4()}", "status": "SUCCESSFUL"}}'.encode(), str(uuid.uuid4())),
    ],
    ids=["no_reference", "not_a_uuid", "unknown_status", "another_charge"],
)
def test_an_unreadable_callback_is_a_bad_callback(body, ref):
    with pytest.raises(BadCallback):
        parse_callback(body, ref)


# --- settling -------------------------------------------------------------------------------


def pending_charge(engine: sa.Engine, msisdn: str = "233020000001") -> DueCharge:
    """A due subscription whose charge was asked and answered 202."""
    add_subscription(engine, msisdn)
    with engine.connect() as connection:
        (due,) = select_due(connection, TODAY, NOW, 60)
    with engine.begin() as connection:
        result = ChargeResult(ChargeOutcome.PENDING, 202, "", 1, due.reference)
        record_answers(connection, [Answered(due, result, NOW)], TODAY, RULES.max_tries, run_id="test")
    return due


def row(engine: sa.Engine, table: sa.Table) -> sa.Row:
    with engine.connect() as connection:
        (found,) = connection.execute(sa.select(table)).all()
    return found


def test_a_pending_charge_blocks_its_subscription_until_it_settles(engine):
    due = pending_charge(engine)
    with engine.connect() as connection:
        assert select_due(connection, TODAY, NOW + timedelta(days=2), 60) == []
    with engine.begin() as connection:
        settle(connection, Settlement(due.reference, ChargeOutcome.EXPIRED, "", SettledBy.POLL), NOW, RULES)
    with engine.connect() as connection:
        assert [c.key for c in select_due(connection, TODAY, NOW, 60)] == [due.key]  # the same intent


def test_a_settled_charge_never_changes_again(engine):
    due = pending_charge(engine)
    at = datetime(2024, 3, 11, 9, 0, tzinfo=UTC)
    with engine.begin() as connection:
        first = settle(
            connection, Settlement(due.reference, ChargeOutcome.SUCCESS, "ok", SettledBy.POLL), at, RULES
        )
    before = row(engine, billing_attempts), row(engine, subscriptions)
    with engine.begin() as connection:
        late = settle(
            connection, Settlement(due.reference, ChargeOutcome.DECLINED, "no", SettledBy.CALLBACK), at, RULES
        )
    assert first.outcome is SettleOutcome.SETTLED and late.outcome is SettleOutcome.ALREADY_SETTLED
    assert (row(engine, billing_attempts), row(engine, subscriptions)) == before
    attempt, subscription = before
    assert (attempt.outcome, attempt.settled_by) == ("success", "poll")
    assert subscription.last_billing_date == date(2024, 3, 11)  # paid on the day it settled
    assert subscription.next_billing_date == date(2024, 3, 12)


def test_an_answer_for_an_intent_the_subscription_has_left_changes_only_its_attempt(engine):
    due = pending_charge(engine)
    with engine.begin() as connection:  # a rejoin meanwhile: a new subscription period
        connection.execute(subscriptions.update().values(joins=2))
    with engine.begin() as connection:
        settle(
            connection, Settlement(due.reference, ChargeOutcome.DECLINED, "", SettledBy.CALLBACK), NOW, RULES
        )
    assert row(engine, billing_attempts).outcome == "declined"
    assert row(engine, subscriptions).failed_billing_count == 0


def test_two_settlements_racing_for_one_charge_settle_it_once(engine):
    due = pending_charge(engine)
    results, start = [], threading.Barrier(2)

    def race(outcome: ChargeOutcome, by: SettledBy) -> None:
        start.wait()
        with engine.begin() as connection:
            results.append(settle(connection, Settlement(due.reference, outcome, "", by), NOW, RULES))

    threads = [
        threading.Thread(target=race, args=(ChargeOutcome.DECLINED, SettledBy.CALLBACK)),
        threading.Thread(target=race, args=(ChargeOutcome.DECLINED, SettledBy.POLL)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(r.outcome for r in results) == ["already_settled", "settled"]
    assert row(engine, subscriptions).failed_billing_count == 1  # one decline, not two
