"""The forecast text: exact numbers, one GSM-7 SMS, template checked at start-up."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iska_pipelines.lib.settings import ConfigurationError, Settings
from iska_pipelines.lib.sms.text import SMS_SEPTETS, format_number, render, septets, validate_template

DEFAULT = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"


def test_the_default_template_renders_the_stored_numbers_exactly():
    text = render(DEFAULT, date(2026, 3, 10), Decimal("0.3000"), Decimal("12.7500"))
    assert text == "Iska 2026-03-10: next 24h 0.3, next 48h 12.75"


@pytest.mark.parametrize(("stored", "shown"), [
    ("0.3000", "0.3"), ("0.7513", "0.7513"), ("2.0000", "2"), ("100", "100"), ("10.0000", "10"),
    ("0", "0"), ("-0.0000", "0"), ("-1.2500", "-1.25"), ("99999999.9999", "99999999.9999"),
])
def test_numbers_are_written_as_stored_without_trailing_zeros(stored, shown):
    assert format_number(Decimal(stored)) == shown


def test_a_float_is_refused_rather_than_rendered_with_noise():
    with pytest.raises(TypeError):
        format_number(0.1 + 0.2)


@given(st.decimals(min_value=Decimal("-99999999.9999"), max_value=Decimal("99999999.9999"),
                   places=4, allow_nan=False, allow_infinity=False))
def test_a_rendered_number_reads_back_as_the_same_value(value):
    shown = format_number(value)
    assert Decimal(shown) == value
    assert "e" not in shown.lower() and len(shown) <= 14


def test_extension_characters_count_two_septets_and_others_are_refused():
    assert septets("abc") == 3
    assert septets("[€]") == 6
    with pytest.raises(ValueError, match="☀"):
        septets("sunny ☀")


def test_a_template_that_could_need_two_sms_is_a_configuration_error_naming_the_variable():
    with pytest.raises(ConfigurationError, match=r"ISKA_SMS_TEMPLATE.*one GSM-7 SMS"):
        Settings.from_env({"ISKA_SMS_TEMPLATE": "x" * 150 + " {fcat24}"})


@pytest.mark.parametrize(("template", "complaint"), [
    ("Rain {fcat72}", "unknown field"),
    ("Rain {fcat24", "not a valid template"),
    ("Rain ☔ {fcat24}", "GSM-7"),
])
def test_a_broken_template_is_refused_at_start_up(template, complaint):
    with pytest.raises(ConfigurationError, match=complaint):
        validate_template(template)


def test_the_widest_possible_default_text_fits_one_sms():
    text = render(DEFAULT, date(2026, 12, 31), Decimal("-99999999.9999"), Decimal("-99999999.9999"))
    assert septets(text) <= SMS_SEPTETS
