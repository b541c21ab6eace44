"""Replies in a deployment of two regions (SPEC §13 with §15): each goes out through its
region's gateways, the subscriber's region, or an unknown number's prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from iska_pipelines_tests.consent_world import Phone, phone_for, subscribe
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.sms_world import today
from iska_pipelines_tests.test_api_inbound import delivered_replies


@pytest.fixture
def two_region_phone(database_url, data_dir, simulator, engine, tmp_path) -> Iterator[Phone]:
    regions = tmp_path / "regions.toml"
    regions.write_text(f"""
[GH]
timezone = "Africa/Accra"
prefixes = ["233"]
sms_gateways = [{{ url = "{simulator.sms_url("gh")}" }}]

[NG]
timezone = "Africa/Lagos"
language = "ha"
prefixes = ["234"]
sms_gateways = [{{ url = "{simulator.sms_url("ng")}" }}]
""")
    with phone_for(
        database_url,
        data_dir,
        simulator,
        engine,
        ISKA_REGIONS_FILE=str(regions),
        SMS_URLS=simulator.sms_url("gh"),
    ) as running:
        yield running


def gateway_calls(phone: Phone) -> dict[str, int]:
    return {name: len(times) for name, times in phone.simulator.arrivals().items() if name.startswith("sms/")}


def test_a_subscribers_reply_goes_through_their_regions_gateway(two_region_phone, engine):
    subscribe(engine, "234801000001", day=today(), region="NG")
    subscribe(engine, "233201000001", day=today(), region="GH")

    two_region_phone.text("234801000001", "STOP")
    two_region_phone.text("233201000001", "STOP")

    delivered_replies(two_region_phone, "234801000001")
    delivered_replies(two_region_phone, "233201000001")
    assert gateway_calls(two_region_phone) == {"sms/ng": 1, "sms/gh": 1}


def test_an_unknown_numbers_help_reply_goes_through_its_prefixs_region(two_region_phone):
    answer = two_region_phone.text("234809999999", "HELP")

    assert answer["keyword"] == "help"
    wait_for(lambda: gateway_calls(two_region_phone).get("sms/ng") == 1)
    assert "sms/gh" not in gateway_calls(two_region_phone)
