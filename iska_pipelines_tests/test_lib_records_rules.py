"""A record given to the API is judged exactly as the same values in a CSV row (SPEC §3, §8)."""

from __future__ import annotations

import csv
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iska_pipelines.lib.errors import InvalidRecord
from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.forecasts.rules import check_forecast
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.subscriptions.rules import check_subscription
from iska_pipelines.lib.vocabulary import FileKind, Plan

TZ = "Africa/Accra"
FORECAST_ORDER = ["gid", "lat", "lon", "fcat24", "fcat48", "is_active"]  # the CSV reader's order
ADDITION_ORDER = ["msisdn", "ts", "lat", "lon", "plan"]


def cells(*samples: str) -> st.SearchStrategy[str]:
    """Values near the rules' edges, plus arbitrary printable text."""
    return st.one_of(
        st.sampled_from(samples), st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=12)
    )


def one_row_file(header: list[str], row: list[str]) -> Path:
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed by the `with` below; the path outlives it)
        "w", suffix=".csv", delete=False, newline="", encoding="utf-8"
    )
    with handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        writer.writerow(row)
    return Path(handle.name)


def first_reason(error: InvalidRecord, order: list[str]) -> str:
    return sorted(error.errors, key=lambda e: order.index(e.field))[0].reason


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    gid=cells("1", "+7", "0", "-3", "1e3", "999999999999999999", "1000000000000000000", " 12 "),
    lat=cells("5.6", "-90", "90.0001", "nan", "1e1", ".5", "abc"),
    lon=cells("-0.2", "180", "-180.5", "inf", "+3."),
    fcat24=cells("0.1234", "0.12345", "1", ".5", "-0.0001", "1e-3", "12345678.1234"),
    fcat48=cells("0.5", "x", "3.0000"),
    is_active=cells("true", "False", "1", "0", "yes", "N", "maybe", ""),
)
def test_a_forecast_is_refused_for_the_reason_a_file_row_would_be(gid, lat, lon, fcat24, fcat48, is_active):
    row = [gid, lat, lon, fcat24, fcat48, is_active]
    path = one_row_file(FORECAST_ORDER, row)
    try:
        parsed = read_forecasts(path)
    finally:
        path.unlink()
    try:
        checked = check_forecast(dict(zip(FORECAST_ORDER, row, strict=True)))
    except InvalidRecord as error:
        assert parsed.refused.height == 1, f"the file accepted what the API refused: {error}"
        assert first_reason(error, FORECAST_ORDER) == parsed.refused["reason"][0]
        return
    assert parsed.refused.height == 0, f"the API accepted a row refused as {parsed.refused['reason'][0]}"
    [good] = parsed.good.to_dicts()
    assert (checked.gid, checked.lat, checked.lon) == (good["gid"], good["lat"], good["lon"])
    assert (checked.fcat24, checked.fcat48, checked.is_active) == (
        good["fcat24"],
        good["fcat48"],
        good["is_active"],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    msisdn=cells(
        "233020000023",
        "+233 24 000 0001",
        "0023324",
        "1234567",
        "1234567890123456",
        "23a4567890",
        "٢٣٣٠٢٠٠٠٠٠٢٣",
        "２３３０２００００２３",
    ),
    ts=cells(
        "2021-02-04 06:09:06",
        "2021-02-04T06:09:06Z",
        "2021-02-04 06:09:06+01:00",
        "2021-02-30 00:00:00",
        "2021-02-04",
        "yesterday",
        "2062-02-04 06:09:06",
        "2021-02-04t06:09:06+0100",
        "2021-02-04 06:09:06+15:00",
    ),
    lat=cells("7.062351", "-91", "nan"),
    lon=cells("-1.404598", "181", ""),
    plan=cells("11", "21", "daily", "WEEKLY", "31", "monthly"),
)
def test_a_subscription_is_refused_for_the_reason_an_additions_row_would_be(msisdn, ts, lat, lon, plan):
    row = [msisdn, ts, lat, lon, plan]
    assume(any((cell or "").strip() for cell in row))  # a line of blank cells is no row (SPEC §3)
    path = one_row_file(["msisdn", "ts", "lat", "lon", "service_id"], row)
    try:
        parsed = read_subscription_file(path, FileKind.ADDITIONS, TZ)
    finally:
        path.unlink()
    try:
        checked = check_subscription(dict(zip(ADDITION_ORDER, row, strict=True)), TZ)
    except InvalidRecord as error:
        assert parsed.refused.height == 1, f"the file accepted what the API refused: {error}"
        assert first_reason(error, ADDITION_ORDER) == parsed.refused["reason"][0]
        return
    assert parsed.refused.height == 0, f"the API accepted a row refused as {parsed.refused['reason'][0]}"
    [good] = parsed.good.to_dicts()
    assert (checked.msisdn, checked.ts, checked.lat, checked.lon, str(checked.plan)) == (
        good["msisdn"],
        good["ts"],
        good["lat"],
        good["lon"],
        good["plan"],
    )


def test_json_numbers_and_booleans_count_as_the_text_a_file_would_hold():
    checked = check_forecast(
        {"gid": 7, "lat": 5.5, "lon": -0.25, "fcat24": 0.1234, "fcat48": 1, "is_active": False}
    )
    assert (checked.gid, checked.fcat24, checked.fcat48, checked.is_active) == (
        7,
        Decimal("0.1234"),
        Decimal("1.0000"),
        False,
    )
    assert check_subscription({"msisdn": 233020000023, "plan": 21}, TZ).plan is Plan.WEEKLY


def test_every_bad_field_is_reported_at_once_with_its_reason():
    with pytest.raises(InvalidRecord) as refused:
        check_subscription(
            {"msisdn": "12", "plan": "monthly", "lat": 95}, TZ, required=["msisdn", "plan", "lat", "lon"]
        )
    assert {(e.field, e.reason) for e in refused.value.errors} == {
        ("lon", "required"),
        ("msisdn", "invalid_msisdn"),
        ("plan", "invalid_plan"),
        ("lat", "invalid_lat"),
    }


def test_a_forecast_point_may_be_given_as_geom():
    checked = check_forecast({"gid": 1, "geom": "SRID=4326;POINT(-3.3 4.5)", "fcat24": "1", "fcat48": "2"})
    assert (checked.lat, checked.lon) == (4.5, -3.3)
    with pytest.raises(InvalidRecord) as refused:
        check_forecast({"gid": 1, "geom": "POINT(nowhere)", "fcat24": "1", "fcat48": "2"})
    assert [e.reason for e in refused.value.errors] == ["invalid_geom"]


@pytest.mark.parametrize("value", [[1], {"a": 1}])
def test_lists_and_objects_are_never_valid_values(value):
    with pytest.raises(InvalidRecord):
        check_subscription({"msisdn": value}, TZ)


@pytest.mark.parametrize("msisdn", ["٢٣٣٠٢٠٠٠٠٠٢٣", "２３３０２００００２３", "+٢٣٣ ٢٤ ٠٠٠ ٠٠٠١"])
def test_the_api_refuses_msisdns_in_digits_of_other_scripts(msisdn):
    with pytest.raises(InvalidRecord) as refused:
        check_subscription({"msisdn": msisdn}, TZ)
    assert [(e.field, e.reason) for e in refused.value.errors] == [("msisdn", "invalid_msisdn")]


def test_the_api_refuses_a_ts_years_ahead_as_future_ts():
    with pytest.raises(InvalidRecord) as refused:
        check_subscription({"msisdn": "233020000023", "ts": "2062-02-04 06:09:06"}, TZ)
    assert [(e.field, e.reason) for e in refused.value.errors] == [("ts", "future_ts")]


def test_the_api_accepts_a_ts_ahead_within_max_future_minutes():
    soon = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    checked = check_subscription({"ts": soon.isoformat()}, TZ, max_future_minutes=30)
    assert checked.ts == soon
    with pytest.raises(InvalidRecord):
        check_subscription({"ts": soon.isoformat()}, TZ, max_future_minutes=10)
