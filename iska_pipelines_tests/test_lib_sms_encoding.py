"""GSM-7 / UCS-2 and segment arithmetic (SPEC §14) on the boundary texts and published examples."""

from __future__ import annotations

import pytest

from iska_pipelines.lib.sms.encoding import SEPTETS, Encoding, Measure, gsm7_fallback, gsm7_septets, measure

GSM7, UCS2 = Encoding.GSM7, Encoding.UCS2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # published examples: 3GPP TS 23.038's tables and the gateways' segment calculators
        ("Hello world", Measure(GSM7, 11, 1)),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ", Measure(GSM7, 29, 1)),
        ("€", Measure(GSM7, 2, 1)),
        ("{}[]~|\\^€", Measure(GSM7, 18, 1)),
        ("Привет", Measure(UCS2, 6, 1)),
        ("😀", Measure(UCS2, 2, 1)),  # outside the BMP: a surrogate pair, two UTF-16 units
        ("", Measure(GSM7, 0, 1)),
    ],
)
def test_published_examples(text, expected):
    assert measure(text) == expected


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),  # 153 × 2
        ("a" * 307, GSM7, 307, 3),
        ("a" * 159 + "€", GSM7, 161, 2),  # the extension character straddles 160: two septets, 161
        ("a" * 158 + "€", GSM7, 160, 1),  # ... and just fits
        ("a" * 152 + "€" + "a" * 152, GSM7, 306, 3),  # escape pair never split: € moves to part 2
        ("a" * 151 + "€" + "a" * 153, GSM7, 306, 2),
        ("ɛ" * 70, UCS2, 70, 1),
        ("ɛ" * 71, UCS2, 71, 2),
        ("ɛ" * 134, UCS2, 134, 2),  # 67 × 2
        ("ɛ" * 135, UCS2, 135, 3),
        ("a" * 69 + "ɔ", UCS2, 70, 1),  # one Twi letter turns 70 letters into UCS-2
        ("a" * 159 + "ɔ", UCS2, 160, 3),
        ("ɛ" * 68 + "😀", UCS2, 70, 1),
        ("ɛ" * 69 + "😀", UCS2, 71, 2),
        ("ɛ" * 66 + "😀" + "ɛ" * 66, UCS2, 134, 3),  # a surrogate pair is never split either
    ],
)
def test_boundary_texts(text, encoding, units, segments):
    assert measure(text) == Measure(encoding, units, segments)


def test_septets_count_extension_characters_twice_and_refuse_what_gsm7_lacks():
    assert gsm7_septets("a{b") == 4
    assert gsm7_septets("ɛ") is None
    assert gsm7_septets("\x1b") is None  # the escape itself is not a character to send


@pytest.mark.parametrize(
    ("text", "nearest"),
    [
        ("Nsuo bɛtɔ ɔkyena", "Nsuo beto okyena"),  # Twi
        ("Ɖeɖe ƒe ɣeyiɣi ʋu ŋutɔ", "Dede fe geyigi vu nguto"),  # Ewe
        ("Ɓarna ɗaya ƙasa ƴan", "Barna daya kasa yan"),  # Hausa
        ("Ŋ ʒ", "Ng z"),
        ("prévision à Dakar: pluie ê ç", "prévision à Dakar: pluie e c"),  # GSM-7 keeps é and à
        ("ɛ́ ɔ̃ ẽ", "e o e"),  # tones and nasal marks dropped with their letter's fallback
        ("l’eau — 24h…", "l'eau - 24h..."),
    ],
)
def test_the_fallback_spells_each_letter_the_nearest_gsm7_way(text, nearest):
    assert gsm7_fallback(text) == nearest
    assert measure(gsm7_fallback(text)).encoding is GSM7


def test_the_fallback_keeps_what_has_no_gsm7_spelling_so_the_text_stays_ucs2():
    assert gsm7_fallback("rain 😀") == "rain 😀"
    assert measure(gsm7_fallback("rain 😀")).encoding is UCS2


def test_a_twi_text_of_two_ucs2_segments_is_one_gsm7_segment_with_the_fallback():
    text = "Iska 2026-12-31: nsuo bɛtɔ nnɔnhwerew 24 mu 0.25, nnɔnhwerew 48 mu 0.5. Yɛda wo ase."
    assert measure(text) == Measure(UCS2, len(text), 2)
    assert measure(gsm7_fallback(text)) == Measure(GSM7, len(text), 1)


def test_the_septet_table_is_the_codecs_basic_set_and_extension_table():
    assert len(SEPTETS) == 127 + 10  # 128 codes less the escape; 10 extension characters
    assert {char for char, size in SEPTETS.items() if size == 2} == set("\f^{}\\[~]|€")
    assert all(len(char.encode("gsm03.38")) == size for char, size in SEPTETS.items())
