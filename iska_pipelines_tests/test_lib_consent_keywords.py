"""Keywords of inbound SMS (SPEC §13): the first word, case- and accent-insensitive, from the
templates file's word lists of every language plus ISKA_STOP_WORDS."""

from __future__ import annotations

import pytest

from iska_pipelines.lib.consent.keywords import first_word, keywords_of
from iska_pipelines.lib.settings import DEFAULTS, ConfigurationError, Settings
from iska_pipelines.lib.sms.templates import load_catalog
from iska_pipelines.lib.vocabulary import Keyword

KEYWORDS = keywords_of(DEFAULTS.catalog())


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "  Stop please", "Stop.", "STOP!!", "arrêt", "ARRET", "Arrêt merci", "unsubscribe"],
)
def test_a_stop_word_is_found_as_the_first_word_whatever_its_case_accents_or_punctuation(text):
    assert KEYWORDS.match(text) is Keyword.STOP


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("gyae", Keyword.STOP),  # Twi
        ("Dzudzɔ", Keyword.STOP),  # Ewe, a letter outside Latin-1
        ("daina", Keyword.STOP),  # Hausa
        ("join", Keyword.START),
        ("Début", Keyword.START),
        ("oui", Keyword.YES),
        ("aane", Keyword.YES),
        ("yes please", Keyword.YES),
        ("help", Keyword.HELP),
        ("Info?", Keyword.HELP),
        ("aide", Keyword.HELP),
    ],
)
def test_every_languages_words_count_for_every_subscriber(text, keyword):
    assert KEYWORDS.match(text) is keyword


@pytest.mark.parametrize("text", ["", "   ", "please stop", "stopping", "hello iska", "?!"])
def test_a_text_whose_first_word_is_no_keyword_is_left_for_the_operator(text):
    assert KEYWORDS.match(text) is Keyword.OTHER


def test_iska_stop_words_are_added_to_the_languages_own():
    assert KEYWORDS.match("basta") is Keyword.OTHER
    assert keywords_of(DEFAULTS.catalog(), ["Basta"]).match("BASTA now") is Keyword.STOP


def test_a_word_listed_as_stop_in_one_language_and_start_in_another_stops():
    catalog = load_catalog(
        text="""
[en]
forecast = "f {date} {fcat24} {fcat48}"
opt_out = "o"
rejoin_ask = "r {price}"
rejoin_done = "d"
help = "h {price}"
stop_words = ["HALT"]
start_words = ["GO"]
yes_words = ["YES"]
date_format = "{day}"

[xx]
forecast = "f {date} {fcat24} {fcat48}"
opt_out = "o"
rejoin_ask = "r {price}"
rejoin_done = "d"
help = "h {price}"
stop_words = ["NO"]
start_words = ["HALT"]
yes_words = ["SI"]
date_format = "{day}"
"""
    )
    assert keywords_of(catalog).match("halt") is Keyword.STOP


def test_the_first_word_is_folded_without_accents():
    assert first_word("  Arrêt, merci") == "ARRET"
    assert first_word("...") == ""


def test_iska_stop_words_is_a_comma_separated_list():
    assert Settings.from_env({"ISKA_STOP_WORDS": " Basta, Fini ,"}).stop_words == ("Basta", "Fini")


def test_a_price_longer_than_the_templates_were_checked_with_is_refused():
    with pytest.raises(ConfigurationError, match="ISKA_PRICE_DAILY"):
        Settings.from_env({"ISKA_PRICE_DAILY": "GHS 0.20 every single day"})
