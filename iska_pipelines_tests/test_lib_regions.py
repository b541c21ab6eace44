"""Regions (SPEC §15) as plain data: the regions file and its mistakes, the one region without
it, the longest prefix, the `region` column of additions files, and the send window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.regions.config import SINGLE_REGION, Gateway, load_regions, single_region
from iska_pipelines.lib.regions.gateways import gateways_for
from iska_pipelines.lib.regions.window import send_window
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.subscriptions.rules import check_subscription
from iska_pipelines.lib.vocabulary import FileKind

TWO = """
[GH]
timezone = "Africa/Accra"
sms_hour = 5
language = "tw"
prefixes = ["233"]
sms_gateways = [{ url = "http://gw-gh-1/sms", max_tps = 50 }, { url = "http://gw-gh-2/sms", max_tps = 50 }]

[NG]
timezone = "Africa/Lagos"
sms_hour = 6
language = "ha"
prefixes = ["234", "2348"]
sms_gateways = [{ url = "http://gw-ng/sms", max_tps = 30 }]

[NG-MTN]
timezone = "Africa/Lagos"
prefixes = ["234803"]
sms_gateways = [{ url = "http://gw-mtn/sms" }]
"""


def regions_file(tmp_path: Path, text: str = TWO) -> Path:
    path = tmp_path / "regions.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_regions_file_gives_each_region_its_zone_hour_language_prefixes_and_gateways(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    assert regions.codes == ("GH", "NG", "NG-MTN")
    assert regions.default.code == "GH"  # the first table
    ng = regions.get("NG")
    assert (ng.timezone, ng.sms_hour, ng.language, ng.prefixes) == ("Africa/Lagos", 6, "ha", ("234", "2348"))
    assert gateways_for(regions, "GH") == (
        Gateway("http://gw-gh-1/sms", 50),
        Gateway("http://gw-gh-2/sms", 50),
    )
    assert regions.get("GH").total_tps == 100
    mtn = regions.get("NG-MTN")
    assert (mtn.sms_hour, mtn.language, mtn.total_tps) == (5, None, 0.0)  # ISKA_SMS_HOUR; uncapped


def test_the_longest_matching_prefix_wins_and_no_match_is_the_default_region(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    assert regions.for_msisdn("2348031234567").code == "NG-MTN"
    assert regions.for_msisdn("2348051234567").code == "NG"
    assert regions.for_msisdn("2347051234567").code == "NG"
    assert regions.for_msisdn("233241234567").code == "GH"
    assert regions.for_msisdn("22370000000").code == "GH"  # Mali: no prefix, the default


def test_a_stored_region_that_is_empty_or_no_longer_configured_belongs_to_the_default_region(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    assert regions.get(None).code == regions.get("ML").code == "GH"
    assert regions.in_region("region", "NG") == "region = 'NG'"
    assert regions.in_region("region", "GH") == "(region IS NULL OR region NOT IN ('NG', 'NG-MTN'))"


def test_without_a_regions_file_there_is_one_region_from_todays_variables():
    settings = Settings.from_env(
        {
            "ISKA_TIMEZONE": "Africa/Lagos",
            "ISKA_SMS_HOUR": "6",
            "SMS_URLS": "http://a/sms,http://b/sms",
            "SMS_MAX_TPS": "20",
        }
    )
    regions = settings.regions()
    assert regions.codes == (SINGLE_REGION,) and not regions.several
    assert (regions.default.timezone, regions.default.sms_hour) == ("Africa/Lagos", 6)
    assert gateways_for(regions, None) == (Gateway("http://a/sms", 20), Gateway("http://b/sms", 20))
    assert regions.in_region("region", SINGLE_REGION) == "1 = 1"  # everyone, as before regions


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (('timezone = "Africa/Lagos"', 'timezone = "Africa/Abuja"'), ["[NG]", "timezone", "Africa/Abuja"]),
        (("sms_hour = 6", "sms_hour = 25"), ["[NG]", "sms_hour", "25"]),
        (('language = "ha"', 'language = "hausa"'), ["[NG]", "language", "hausa"]),
        (('prefixes = ["234", "2348"]', "prefixes = [234]"), ["[NG]", "prefixes"]),
        (('prefixes = ["234", "2348"]', 'prefixes = ["233"]'), ["prefix '233'", "[GH]", "[NG]"]),
        (
            ('{ url = "http://gw-ng/sms", max_tps = 30 }', '{ url = "gw-ng", max_tps = 30 }'),
            ["[NG]", "sms_gateways[0]", "url"],
        ),
        (
            ('{ url = "http://gw-ng/sms", max_tps = 30 }', '{ url = "http://gw-ng/sms", max_tps = -1 }'),
            ["[NG]", "max_tps"],
        ),
        (
            ('sms_gateways = [{ url = "http://gw-ng/sms", max_tps = 30 }]', "sms_gateways = []"),
            ["[NG]", "sms_gateways"],
        ),
        (("sms_hour = 6", "sms_houre = 6"), ["[NG]", "unknown key 'sms_houre'"]),
        (('timezone = "Africa/Lagos"\nsms_hour', "sms_hour"), ["[NG]", "timezone is missing"]),
        (("[NG-MTN]", '["NG MTN"]'), ["[NG MTN]", "region code"]),
        (("[NG]", "[NG"), ["not valid TOML"]),
    ],
)
def test_a_mistake_in_the_regions_file_names_the_file_the_region_and_the_field(tmp_path, change, names):
    path = regions_file(tmp_path, TWO.replace(*change, 1))
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"ISKA_REGIONS_FILE": str(path)})
    assert str(raised.value).startswith(f"ISKA_REGIONS_FILE {path}")
    for name in names:
        assert name in str(raised.value)


def test_a_missing_or_empty_regions_file_stops_start_up(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Settings.from_env({"ISKA_REGIONS_FILE": str(tmp_path / "nowhere.toml")})
    with pytest.raises(ConfigurationError, match="has no region"):
        Settings.from_env({"ISKA_REGIONS_FILE": str(regions_file(tmp_path, "# nothing yet\n"))})


# --- the `region` column (SPEC §3, §15) -----------------------------------------------------------


def additions(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "additions.csv"
    path.write_text(
        "msisdn,ts,lat,lon,service_id,region\n" + "".join(f"{m},{ts},5.6,-0.2,11,{r}\n" for m, ts, r in rows),
        encoding="utf-8",
    )
    return path


def test_the_region_column_is_read_as_configured_and_else_the_prefix_decides(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    rows = [
        ("233240000001", "2026-01-01 08:00:00", "ng"),
        ("233240000002", "2026-01-01 08:00:00", ""),
        ("234803000003", "2026-01-01 08:00:00", " GH "),
        ("234803000004", "2026-01-01 08:00:00", ""),
    ]
    parsed = read_subscription_file(
        additions(tmp_path, rows), FileKind.ADDITIONS, "Africa/Accra", regions=regions
    )
    assert parsed.good["region"].to_list() == ["NG", None, "GH", None]
    assert parsed.good["region_guess"].to_list() == ["GH", "GH", "NG-MTN", "NG-MTN"]


def test_a_region_code_no_region_has_is_invalid_region(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    rows = [("233240000001", "2026-01-01 08:00:00", "GH"), ("233240000002", "2026-01-01 08:00:00", "ML")]
    parsed = read_subscription_file(
        additions(tmp_path, rows), FileKind.ADDITIONS, "Africa/Accra", regions=regions
    )
    assert parsed.refused["reason"].to_list() == ["invalid_region"]
    assert parsed.refused["region"].to_list() == ["ML"]  # as the file wrote it


def test_with_one_region_only_its_code_is_a_valid_region(tmp_path):
    rows = [("233240000001", "2026-01-01 08:00:00", "default"), ("233240000002", "2026-01-01 08:00:00", "GH")]
    parsed = read_subscription_file(additions(tmp_path, rows), FileKind.ADDITIONS, "Africa/Accra")
    assert parsed.good["region"].to_list() == ["default"]
    assert parsed.refused["reason"].to_list() == ["invalid_region"]


def test_a_ts_without_an_offset_is_local_time_in_the_rows_region(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    rows = [
        ("233240000001", "2026-01-01 08:00:00", ""),  # Accra, UTC+0
        ("234803000002", "2026-01-01 08:00:00", ""),  # Lagos by its prefix, UTC+1
        ("233240000003", "2026-01-01 08:00:00", "NG"),  # Lagos by its column
        ("234803000004", "2026-01-01 08:00:00+00:00", ""),  # an offset is kept
    ]
    parsed = read_subscription_file(
        additions(tmp_path, rows), FileKind.ADDITIONS, "Africa/Accra", regions=regions
    )
    assert [ts.hour for ts in parsed.good["ts"].to_list()] == [8, 7, 7, 8]


# --- the send window ----------------------------------------------------------------------------


def test_the_plan_finishes_after_its_messages_at_the_regions_total_tps(tmp_path):
    region = load_regions(regions_file(tmp_path), sms_hour=5).get("NG")  # 30 messages/s, 06:00 Lagos
    before = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    fits = send_window(region, date(2026, 3, 10), 30 * 60 * 60, 60, before)
    assert fits.finishes == datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 05:00 UTC + one hour
    assert fits.fits
    late = send_window(region, date(2026, 3, 10), 30 * 60 * 60 + 30, 60, before)
    assert not late.fits and "ISKA_SEND_WINDOW_MINUTES=60" in late.describe()


def test_a_plan_made_after_the_sms_hour_starts_from_now(tmp_path):
    region = load_regions(regions_file(tmp_path), sms_hour=5).get("NG")
    now = datetime(2026, 3, 10, 5, 50, tzinfo=UTC)  # 50 minutes into the window
    window = send_window(region, date(2026, 3, 10), 30 * 60 * 20, 60, now)
    assert window.finishes == datetime(2026, 3, 10, 6, 10, tzinfo=UTC) and not window.fits


def test_an_uncapped_region_always_fits(tmp_path):
    region = load_regions(regions_file(tmp_path), sms_hour=5).get("NG-MTN")
    assert send_window(region, date(2026, 3, 10), 10**7, 1, datetime(2026, 3, 10, tzinfo=UTC)).fits
    assert single_region("Africa/Accra", 5, None, ["http://a/sms"], 0).default.total_tps == 0


def test_the_demos_regions_file_puts_the_nigerian_sample_subscribers_in_nigeria():
    root = Path(__file__).resolve().parents[1]
    regions = Settings.from_env({"ISKA_REGIONS_FILE": str(root / "samples" / "regions.toml")}).regions()
    assert regions.codes == ("GH", "NG") and regions.get("NG").language == "ha"
    parsed = read_subscription_file(
        root / "samples" / "additions_nigeria.csv", FileKind.ADDITIONS, "Africa/Accra", regions=regions
    )
    assert parsed.refused.height == 0
    chosen = parsed.good["region"].fill_null(parsed.good["region_guess"]).to_list()
    assert chosen == ["NG"] * 5  # four by their prefix, one by its column


LOCATION = """
import json
from iska_pipelines.definitions import defs
repository = defs().get_repository_def()
job = repository.get_job("sms_job")
print(json.dumps({
    "schedules": sorted(
        (s.name, s.cron_schedule, s.execution_timezone) for s in repository.schedule_defs if s.name.startswith("sms")
    ),
    "dimensions": [d.name for d in job.partitions_def.partitions_defs],
    "regions": job.partitions_def.get_partitions_def_for_dimension("region").get_partition_keys(),
}))
"""


def test_the_code_location_loads_with_the_demos_two_regions(tmp_path):
    """In a process of its own: the definitions are built from the environment at import."""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "ISKA_REGIONS_FILE": str(root / "samples" / "regions.toml"),
        "ISKA_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", LOCATION], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["schedules"] == [
        ["sms_daily_schedule_GH", "0 5 * * *", "Africa/Accra"],
        ["sms_daily_schedule_NG", "0 5 * * *", "Africa/Lagos"],
    ]
    assert found["dimensions"] == ["day", "region"] and found["regions"] == ["GH", "NG"]


def test_an_api_ts_without_an_offset_is_local_time_in_the_subscribers_region(tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)

    def hour(**values: object) -> int:
        checked = check_subscription({"ts": "2026-01-01 08:00:00", **values}, "Africa/Accra", regions=regions)
        assert checked.ts is not None
        return checked.ts.hour

    assert hour(msisdn="233240000001") == 8
    assert hour(msisdn="234803000002") == 7  # Lagos, by its prefix
    assert hour(msisdn="233240000003", region="NG") == 7  # Lagos, as chosen
