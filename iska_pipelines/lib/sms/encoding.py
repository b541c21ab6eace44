"""GSM-7 or UCS-2, and how many paid segments a text takes (SPEC §14).

A text GSM-7 can carry (the GSM 03.38 basic set one septet each, its extension table `^{}\\[~]|€`
and form feed two: escape + character) is sent as GSM-7, anything else as UCS-2, counted in
UTF-16 code units (an emoji outside the BMP is two). One SMS holds 160 septets or 70 units;
a longer text is split into parts of 153 septets or 67 units (the rest of each part carries the
concatenation header), and a part never ends inside an escape pair or a surrogate pair, so such
a character at a part's edge moves whole to the next part. The septets come from the
`gsm0338` codec (one byte per septet before packing).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import gsm0338  # type: ignore[import-untyped]  # noqa: F401  registers the 'gsm03.38' codec

CODEC = "gsm03.38"
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
ESCAPE = "\x1b"  # the codec maps it, but it is the extension table's prefix, never a character


class Encoding(StrEnum):
    """`sms_messages.encoding` and the request's `"encoding"`."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class Measure:
    """How a text goes out: its encoding, its length in that encoding's units, its segments."""

    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def _septet_table() -> dict[str, int]:
    """Every character GSM-7 carries and its septets, read once from the codec: the 127 of the
    basic set (all codes but the escape) and the extension table's (escape + code)."""
    table: dict[str, int] = {}
    for code in range(128):
        for encoded in (bytes([code]), bytes([0x1B, code])):
            if encoded == ESCAPE.encode():
                continue
            try:
                char = encoded.decode(CODEC)
            except UnicodeDecodeError:
                continue
            if len(char) == 1 and char != ESCAPE:
                table.setdefault(char, len(encoded))
    return table


SEPTETS = _septet_table()


def char_septets(char: str) -> int | None:
    """Septets of one character in GSM-7 (1 or 2), None when GSM-7 cannot carry it."""
    return SEPTETS.get(char)


def gsm7_septets(text: str) -> int | None:
    """Length of `text` in GSM-7 septets, None when some character is not in GSM-7."""
    sizes = [char_septets(char) for char in text]
    return None if None in sizes else sum(s for s in sizes if s is not None)


def ucs2_units(char_or_text: str) -> int:
    return len(char_or_text.encode("utf-16-le")) // 2


def _parts(sizes: list[int], single: int, part: int) -> int:
    """Segments for characters of these sizes: one when they fit `single`, else parts of at most
    `part`, filled in order, a character never split across two parts."""
    if sum(sizes) <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def measure(text: str) -> Measure:
    """GSM-7 when every character has a septet, else UCS-2; with units and segments."""
    septets = [char_septets(char) for char in text]
    if None not in septets:
        sizes = [s for s in septets if s is not None]
        return Measure(Encoding.GSM7, sum(sizes), _parts(sizes, GSM7_SINGLE, GSM7_PART))
    sizes = [ucs2_units(char) for char in text]
    return Measure(Encoding.UCS2, sum(sizes), _parts(sizes, UCS2_SINGLE, UCS2_PART))


def is_gsm7(text: str) -> bool:
    return all(char in SEPTETS for char in text)


@lru_cache(maxsize=4096)
def encoding_of(text: str) -> Encoding:
    """The encoding a text is sent in; cached, as a day's texts repeat per grid point."""
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


# ISKA_GSM7_FALLBACK: the nearest GSM-7 spelling of letters of ISKA's languages that GSM-7 lacks
# (Twi ɛ ɔ; Ewe ɖ ƒ ɣ ʋ ŋ; Hausa ɓ ɗ ƙ ƴ; Dagbani ʒ), and of common typography. Accented letters
# not in GSM-7 lose their accent (NFD, marks dropped) when no entry here says otherwise.
NEAREST = {
    "ɛ": "e",
    "Ɛ": "E",
    "ɔ": "o",
    "Ɔ": "O",
    "ɖ": "d",
    "Ɖ": "D",
    "ƒ": "f",
    "Ƒ": "F",
    "ɣ": "g",
    "Ɣ": "G",
    "ʋ": "v",
    "Ʋ": "V",
    "ŋ": "ng",
    "Ŋ": "Ng",
    "ɓ": "b",
    "Ɓ": "B",
    "ɗ": "d",
    "Ɗ": "D",
    "ƙ": "k",
    "Ƙ": "K",
    "ƴ": "y",
    "Ƴ": "Y",
    "ʒ": "z",
    "Ʒ": "Z",
    "ʼ": "'",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "\u00a0": " ",
    "\u202f": " ",
    "ç": "c",
}


def _nearest(char: str) -> str:
    if char_septets(char) is not None:
        return char
    if char in NEAREST:
        return NEAREST[char]
    if unicodedata.combining(char):
        return ""  # a tone or accent mark left alone after a letter with no precomposed form
    base = "".join(
        _nearest(part) if part in NEAREST else part
        for part in unicodedata.normalize("NFD", char)
        if not unicodedata.combining(part)
    )
    return base if base and is_gsm7(base) else char


def gsm7_fallback(text: str) -> str:
    """`text` with every letter GSM-7 lacks replaced by its nearest GSM-7 spelling (ɛ -> e,
    ŋ -> ng, ẽ -> e); characters with no such spelling (an emoji) are kept, so the text stays
    UCS-2 then. Letters GSM-7 has (é, ñ, ü) are kept as they are."""
    return "".join(_nearest(char) for char in unicodedata.normalize("NFC", text))
