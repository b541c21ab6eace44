"""The subscription file readers' row rules (SPEC §3): ts, msisdn, blank lines, future times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.vocabulary import FileKind

TZ = "Africa/Accra"  # UTC+0 all year: a ts without an offset is UTC
GOOD_TS = "2026-01-01 08:00:00"


def cancellations(tmp_path: Path, rows: list[tuple[str, str]], tail: str = "") -> Path:
    path = tmp_path / "cancel.csv"
    path.write_text("msisdn,ts\n" + "".join(f"{m},{t}\n" for m, t in rows) + tail, encoding="utf-8")
    return path


def reasons(tmp_path: Path, rows: list[tuple[str, str]], **options) -> list[str]:
    parsed = read_subscription_file(cancellations(tmp_path, rows), FileKind.CANCELLATIONS, TZ, **options)
    return parsed.refused["reason"].to_list()


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-02-04t06:09:06z", utc(2021, 2, 4, 6, 9, 6)),
        ("2021-02-04T06:09:06Z", utc(2021, 2, 4, 6, 9, 6)),
        ("2021-02-04 06:09:06+01", utc(2021, 2, 4, 5, 9, 6)),
        ("2021-02-04T06:09:06+0100", utc(2021, 2, 4, 5, 9, 6)),
        ("2021-02-04T06:09:06+01:00", utc(2021, 2, 4, 5, 9, 6)),
        ("2021-02-04 06:09:06-0130", utc(2021, 2, 4, 7, 39, 6)),
        ("2021-02-04T06:09:06+14:00", utc(2021, 2, 3, 16, 9, 6)),
        ("2021-02-04T06:09:06-14", utc(2021, 2, 4, 20, 9, 6)),
        ("2021-02-04 06:09:06", utc(2021, 2, 4, 6, 9, 6)),
    ],
)
def test_ts_offsets_as_hours_or_hhmm_and_lower_case_t_and_z_are_read(tmp_path, text, expected):
    parsed = read_subscription_file(
        cancellations(tmp_path, [("233240000001", text)]), FileKind.CANCELLATIONS, TZ
    )
    assert parsed.refused.height == 0
    assert parsed.good["ts"].to_list() == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-04T06:09:06+99:99",
        "2021-02-04T06:09:06+14:30",
        "2021-02-04T06:09:06-15",
        "2021-02-04 06:09:06+01:60",
        "2021-02-04 06:09:06+1",
        "2021-02-04 06:09:06+01:0",
    ],
)
def test_ts_offsets_beyond_fourteen_hours_or_malformed_are_invalid_ts(tmp_path, text):
    assert reasons(tmp_path, [("233240000001", text)]) == ["invalid_ts"]


@pytest.mark.parametrize(
    "msisdn",
    ["٢٣٣٢٤٠٠٠٠٠٠١", "２３３２４０００００００１", "۲۳۳۲۴۰۰۰۰۰۰۱", "+٢٣٣ ٢٤ ٠٠٠ ٠٠٠١", "2332400٠0001"],
)
def test_msisdns_in_digits_of_other_scripts_are_invalid_msisdn(tmp_path, msisdn):
    assert reasons(tmp_path, [(msisdn, GOOD_TS)]) == ["invalid_msisdn"]


def test_a_ts_decades_ahead_is_refused_as_future_ts(tmp_path):
    assert reasons(tmp_path, [("233240000001", "2062-01-01 08:00:00")]) == ["future_ts"]


def test_a_ts_ahead_within_max_future_minutes_is_accepted_and_beyond_is_future_ts(tmp_path):
    now = utc(2026, 6, 1, 12, 0, 0)
    rows = [
        ("233240000001", "2026-06-01 12:59:00"),
        ("233240000002", "2026-06-01T13:01:00Z"),
        ("233240000003", "2026-06-01T13:30:00+01:00"),
    ]
    parsed = read_subscription_file(
        cancellations(tmp_path, rows), FileKind.CANCELLATIONS, TZ, max_future_minutes=60, now=now
    )
    assert parsed.good["msisdn"].to_list() == ["233240000001", "233240000003"]
    assert parsed.refused["reason"].to_list() == ["future_ts"]


def test_max_future_minutes_is_counted_from_the_time_the_file_is_read(tmp_path):
    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert reasons(tmp_path, [("233240000001", soon)], max_future_minutes=60) == []
    assert reasons(tmp_path, [("233240000001", soon)], max_future_minutes=10) == ["future_ts"]


def test_blank_lines_are_skipped_and_never_counted_as_rows(tmp_path):
    tail = '\n   \n,\n , \n\r\n"",""\n'
    path = cancellations(tmp_path, [("233240000001", GOOD_TS)], tail=tail)
    parsed = read_subscription_file(path, FileKind.CANCELLATIONS, TZ)
    assert (parsed.rows_in, parsed.rows_refused, parsed.good.height) == (1, 0, 1)


def test_blank_lines_between_rows_are_skipped(tmp_path):
    path = tmp_path / "cancel.csv"
    path.write_text(
        "msisdn,ts\r\n\r\n233240000001,2026-01-01 08:00:00\r\n ,, \r\n233240000002,2026-01-01 08:00:00\r\n",
        encoding="utf-8",
    )
    parsed = read_subscription_file(path, FileKind.CANCELLATIONS, TZ)
    assert parsed.rows_in == 2 and parsed.good["msisdn"].to_list() == ["233240000001", "233240000002"]


def test_a_row_with_a_value_in_an_ignored_column_is_not_blank(tmp_path):
    path = tmp_path / "cancel.csv"
    path.write_text("msisdn,ts,note\n233240000001,2026-01-01 08:00:00,\n,,why\n", encoding="utf-8")
    parsed = read_subscription_file(path, FileKind.CANCELLATIONS, TZ)
    assert parsed.rows_in == 2 and parsed.refused["reason"].to_list() == ["invalid_msisdn"]


def additions_with_languages(tmp_path: Path, codes: list[str]) -> Path:
    path = tmp_path / "additions.csv"
    path.write_text(
        "msisdn,ts,lat,lon,service_id,language\n"
        + "".join(f"23324000010{n},{GOOD_TS},5.6,-0.2,11,{code}\n" for n, code in enumerate(codes)),
        encoding="utf-8",
    )
    return path


def test_the_optional_language_column_is_read_lower_case_and_blank_is_not_chosen(tmp_path):
    parsed = read_subscription_file(
        additions_with_languages(tmp_path, ["tw", " HA ", "", "dag", "Fr"]), FileKind.ADDITIONS, TZ
    )
    assert parsed.good["language"].to_list() == ["tw", "ha", None, "dag", "fr"]
    assert parsed.rows_refused == 0


def test_a_code_that_names_no_language_is_invalid_language(tmp_path):
    parsed = read_subscription_file(
        additions_with_languages(tmp_path, ["en", "xx", "twi-gh", "english"]), FileKind.ADDITIONS, TZ
    )
    assert parsed.good["language"].to_list() == ["en"]
    assert parsed.refused["reason"].to_list() == ["invalid_language"] * 3
    assert parsed.refused["language"].to_list() == ["xx", "twi-gh", "english"]  # as the file wrote it


def test_codes_accepted_are_the_ones_given(tmp_path):
    parsed = read_subscription_file(
        additions_with_languages(tmp_path, ["en", "tw"]), FileKind.ADDITIONS, TZ, languages=frozenset({"en"})
    )
    assert parsed.refused["reason"].to_list() == ["invalid_language"]


def test_an_additions_file_without_the_column_has_no_language(tmp_path):
    path = tmp_path / "additions.csv"
    path.write_text(f"msisdn,ts,lat,lon,service_id\n233240000101,{GOOD_TS},5.6,-0.2,11\n", encoding="utf-8")
    assert read_subscription_file(path, FileKind.ADDITIONS, TZ).good["language"].to_list() == [None]
