"""The templates file (SPEC §14): its structure, the start-up check at the widest values, the
GSM-7 fallback, and which language's texts a subscriber gets."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal

import pytest

from iska_pipelines.lib.settings import DEFAULTS, ConfigurationError, Settings
from iska_pipelines.lib.sms.encoding import Encoding
from iska_pipelines.lib.sms.templates import KEYS, SHIPPED, TEXTS

LANGUAGES = ("en", "fr", "tw", "ee", "ha")
# needs two UCS-2 segments at its widest (ɛ, ɔ), and one GSM-7 segment spelt without them
LONG_TWI = "Iska {date}: nsu bɛtɔ anɔpa yi, dɔnhwerew 24 mu {fcat24}, dɔnhwerew 48 mu {fcat48}"


def templates_file(tmp_path, forecast_tw: str):
    """The shipped file with another Twi forecast."""
    text = SHIPPED.read_text(encoding="utf-8")
    shipped_tw = tomllib.loads(text)["tw"]["forecast"]
    path = tmp_path / "templates.toml"
    path.write_text(
        text.replace(f'forecast = "{shipped_tw}"', f'forecast = "{forecast_tw}"'), encoding="utf-8"
    )
    return path


def test_the_shipped_file_has_every_key_for_each_language_and_says_what_awaits_review():
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    assert set(LANGUAGES) <= set(data)
    for code in LANGUAGES:
        assert set(KEYS) <= set(data[code]), code
        assert set(data[code]["review"]) <= set(KEYS)
    assert data["en"]["review"] == []
    assert {"forecast", "opt_out", "help"} <= set(data["tw"]["review"])
    assert "NATIVE" in SHIPPED.read_text().upper() or "native speaker" in SHIPPED.read_text()


def test_every_shipped_text_fits_one_segment_at_its_widest_without_the_fallback():
    catalog = DEFAULTS.catalog()  # the check passed, or DEFAULTS would not exist
    assert (catalog.max_segments, catalog.gsm7_fallback) == (1, False)
    assert set(LANGUAGES) <= set(catalog.languages)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("en", "Iska 2026-03-10: next 24h 0.3, next 48h 0.45"),
        ("fr", "Iska 10/03/2026 : pluie 24h 0.3, 48h 0.45"),
        ("tw", "Iska 10/3/2026: nsu dɔnhwerew 24 0.3, 48 0.45"),
        ("ha", "Iska 10/3/2026: ruwan sama awa 24 0.3, awa 48 0.45"),
    ],
)
def test_each_language_writes_the_forecast_and_its_date_its_own_way(code, text):
    language = DEFAULTS.catalog().language(code)
    assert language.render_forecast(date(2026, 3, 10), Decimal("0.3000"), Decimal("0.4500")) == text


def test_a_twi_template_of_two_ucs2_segments_is_refused_at_start_up_naming_the_language(tmp_path):
    path = templates_file(tmp_path, LONG_TWI)
    with pytest.raises(
        ConfigurationError,
        match=r"\[tw\] forecast takes 2 UCS-2 segments .*"
        r"ISKA_MAX_SEGMENTS is 1.*ISKA_GSM7_FALLBACK",
    ):
        Settings.from_env({"ISKA_TEMPLATES_FILE": str(path), "ISKA_MAX_SEGMENTS": "1"})


def test_the_same_twi_template_is_accepted_with_the_fallback_and_goes_as_one_gsm7_segment(tmp_path):
    path = templates_file(tmp_path, LONG_TWI)
    catalog = Settings.from_env(
        {"ISKA_TEMPLATES_FILE": str(path), "ISKA_MAX_SEGMENTS": "1", "ISKA_GSM7_FALLBACK": "true"}
    ).catalog()
    text = catalog.language("tw").render_forecast(date(2026, 12, 31), Decimal("0.25"), Decimal("0.5"))
    sent, size = catalog.outgoing(text)
    assert sent == "Iska 31/12/2026: nsu beto anopa yi, donhwerew 24 mu 0.25, donhwerew 48 mu 0.5"
    assert (size.encoding, size.segments) == (Encoding.GSM7, 1)


def test_two_segments_allowed_accept_the_long_twi_template_as_ucs2(tmp_path):
    path = templates_file(tmp_path, LONG_TWI)
    catalog = Settings.from_env({"ISKA_TEMPLATES_FILE": str(path), "ISKA_MAX_SEGMENTS": "2"}).catalog()
    text = catalog.language("tw").render_forecast(date(2026, 12, 31), Decimal("0.25"), Decimal("0.5"))
    assert catalog.outgoing(text)[1].encoding is Encoding.UCS2


def test_the_widest_date_is_checked_not_just_one_day(tmp_path):
    """The date is written 1/1/2028 (8) to 31/12/2028 (10): the longest counts."""
    fits = "ɛ" * 59 + " {date}"  # 60 + 10 = 70 on 31/12
    Settings.from_env({"ISKA_TEMPLATES_FILE": str(templates_file(tmp_path, fits))})
    too_long = "ɛ" * 60 + " {date}"  # 61 + 8 = 69 on 1/1, 61 + 10 = 71 on 31/12
    with pytest.raises(ConfigurationError, match=r"\[tw\] forecast takes 2 UCS-2 segments .*\(71 "):
        Settings.from_env({"ISKA_TEMPLATES_FILE": str(templates_file(tmp_path, too_long))})


def test_every_reply_is_checked_too(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        SHIPPED.read_text(encoding="utf-8").replace(
            'help = "Iska hasashen yanayi na kullum, {price}. STOP: daina."',
            'help = "Iska hasashen yanayi na kullum, {price}. STOP: daina. ' + "ƙ" * 30 + '"',
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match=r"\[ha\] help takes 2 UCS-2 segments"):
        Settings.from_env({"ISKA_TEMPLATES_FILE": str(path)})


def test_a_table_without_a_key_is_refused_naming_it(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[en]\nforecast = "{date} {fcat24} {fcat48}"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"ISKA_TEMPLATES_FILE .*\[en\] lacks opt_out"):
        Settings.from_env({"ISKA_TEMPLATES_FILE": str(path)})


def test_iska_sms_template_replaces_the_default_languages_forecast_only():
    catalog = Settings.from_env(
        {"ISKA_DEFAULT_LANGUAGE": "fr", "ISKA_SMS_TEMPLATE": "Meteo {date} {fcat24} {fcat48}"}
    ).catalog()
    assert catalog.language("fr").forecast == "Meteo {date} {fcat24} {fcat48}"
    assert catalog.language("en").forecast == DEFAULTS.catalog().language("en").forecast


def test_a_language_without_templates_gets_the_region_default_then_the_default_language():
    catalog = Settings.from_env({"ISKA_DEFAULT_LANGUAGE": "fr"}).catalog()
    assert catalog.knows("dag") and catalog.knows("TW") and not catalog.knows("xx")
    assert catalog.language("dag").code == "fr"
    assert catalog.language("dag", region_default="ha").code == "ha"
    assert catalog.language(None).code == "fr"
    assert catalog.language("tw", region_default="ha").code == "tw"
    assert Settings.from_env({"ISKA_DEFAULT_LANGUAGE": "dag"}).catalog().language(None).code == "en"


def test_an_unknown_default_language_stops_start_up():
    with pytest.raises(ConfigurationError, match="ISKA_DEFAULT_LANGUAGE 'xx'"):
        Settings.from_env({"ISKA_DEFAULT_LANGUAGE": "xx"})


def test_every_language_has_its_own_keywords():
    catalog = DEFAULTS.catalog()
    for code in LANGUAGES:
        language = catalog.language(code)
        assert language.stop_words and language.start_words and language.yes_words
    assert "ARRÊT" in catalog.language("fr").stop_words
    assert set(TEXTS) == {"forecast", "opt_out", "rejoin_ask", "rejoin_done", "help"}
