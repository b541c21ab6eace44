"""The forecast text: exact numbers, and the English template as it always read."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE, DEFAULTS, ConfigurationError, Settings
from iska_pipelines.lib.sms.encoding import Encoding
from iska_pipelines.lib.sms.text import format_number


def english():
    return DEFAULTS.catalog().language("en")


def test_the_default_template_renders_the_stored_numbers_exactly():
    text = english().render_forecast(date(2026, 3, 10), Decimal("0.3000"), Decimal("12.7500"))
    assert text == "Iska 2026-03-10: next 24h 0.3, next 48h 12.75"
    assert english().forecast == DEFAULT_SMS_TEMPLATE


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("0.3000", "0.3"),
        ("0.7513", "0.7513"),
        ("2.0000", "2"),
        ("100", "100"),
        ("10.0000", "10"),
        ("0", "0"),
        ("-0.0000", "0"),
        ("-1.2500", "-1.25"),
        ("99999999.9999", "99999999.9999"),
    ],
)
def test_numbers_are_written_as_stored_without_trailing_zeros(stored, shown):
    assert format_number(Decimal(stored)) == shown


def test_a_float_is_refused_rather_than_rendered_with_noise():
    with pytest.raises(TypeError):
        format_number(0.1 + 0.2)


@given(
    st.decimals(
        min_value=Decimal("-99999999.9999"),
        max_value=Decimal("99999999.9999"),
        places=4,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_a_rendered_number_reads_back_as_the_same_value(value):
    shown = format_number(value)
    assert Decimal(shown) == value
    assert "e" not in shown.lower() and len(shown) <= 14


def test_a_template_that_could_need_two_sms_is_a_configuration_error_naming_the_variable():
    with pytest.raises(ConfigurationError, match=r"ISKA_SMS_TEMPLATE.*2 GSM-7 segments.*165 septets"):
        Settings.from_env({"ISKA_SMS_TEMPLATE": "x" * 150 + " {fcat24}"})


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("Rain {fcat72}", "unknown field"),
        ("Rain {fcat24", "not a valid template"),
        ("Rain ☔ {fcat24} " + "x" * 60, "2 UCS-2 segments"),
    ],
)
def test_a_broken_template_is_refused_at_start_up(template, complaint):
    with pytest.raises(ConfigurationError, match=rf"ISKA_SMS_TEMPLATE.*{complaint}"):
        Settings.from_env({"ISKA_SMS_TEMPLATE": template})


def test_a_short_template_outside_gsm7_is_now_allowed_as_one_ucs2_segment():
    settings = Settings.from_env({"ISKA_SMS_TEMPLATE": "Rain ☔ {date} {fcat24} {fcat48}"})
    catalog = settings.catalog()
    text = catalog.language("en").render_forecast(date(2026, 12, 31), Decimal("1"), Decimal("2"))
    assert text == "Rain ☔ 2026-12-31 1 2"
    assert catalog.outgoing(text)[1].encoding is Encoding.UCS2


def test_the_widest_possible_default_text_fits_one_sms():
    text = english().render_forecast(date(2026, 12, 31), Decimal("-99999999.9999"), Decimal("-99999999.9999"))
    sent, size = DEFAULTS.catalog().outgoing(text)
    assert (sent, size.encoding, size.segments) == (text, Encoding.GSM7, 1)
