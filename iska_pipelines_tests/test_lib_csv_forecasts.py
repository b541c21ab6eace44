"""The forecasts file reader's row rules (SPEC §3): fcat decimals, (E)WKB points, issued_at."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import pytest

from iska_pipelines.lib.forecasts.csv import read_forecasts

LON, LAT = -1.25, 6.75
EWKB_Z, EWKB_M, EWKB_SRID = 0x80000000, 0x40000000, 0x20000000


def wkb_hex(little: bool, type_code: int, coordinates: tuple[float, ...], srid: int | None = None) -> str:
    """A point as hex WKB, written field by field the way PostGIS and GEOS write it."""
    order = "<" if little else ">"
    data = struct.pack(order + "BI", 1 if little else 0, type_code)
    if srid is not None:
        data += struct.pack(order + "I", srid)
    return (data + struct.pack(order + "d" * len(coordinates), *coordinates)).hex()


def forecasts_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forecasts.csv"
    path.write_text(text, encoding="utf-8")
    return path


POINTS = {
    "iso 2d": (1, (LON, LAT), None),
    "iso z": (1001, (LON, LAT, 120.0), None),
    "iso m": (2001, (LON, LAT, 7.0), None),
    "iso zm": (3001, (LON, LAT, 120.0, 7.0), None),
    "ewkb z": (EWKB_Z | 1, (LON, LAT, 120.0), None),
    "ewkb m": (EWKB_M | 1, (LON, LAT, 7.0), None),
    "ewkb zm": (EWKB_Z | EWKB_M | 1, (LON, LAT, 120.0, 7.0), None),
    "ewkb srid zm": (EWKB_SRID | EWKB_Z | EWKB_M | 1, (LON, LAT, 120.0, 7.0), 4326),
}


@pytest.mark.parametrize("little", [True, False], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("kind", list(POINTS))
def test_wkb_points_2d_or_with_z_m_in_iso_or_ewkb_codes_are_read(tmp_path, kind, little):
    type_code, coordinates, srid = POINTS[kind]
    geom = wkb_hex(little, type_code, coordinates, srid)
    parsed = read_forecasts(forecasts_file(tmp_path, f"gid,geom,fcat24,fcat48\n1,{geom},0.1,0.2\n"))
    assert parsed.refused.height == 0
    assert parsed.good.select("lat", "lon").row(0) == (LAT, LON)


@pytest.mark.parametrize(
    ("type_code", "coordinates"),
    [
        (1001, (LON, LAT)),  # says Z, carries no Z
        (1, (LON, LAT, 120.0)),  # says 2D, carries three
        (4001, (LON, LAT, 1.0, 2.0)),  # no such ISO dimension
        (1002, (LON, LAT, 1.0)),  # a LineString Z, not a point
    ],
)
def test_wkb_whose_type_does_not_match_a_point_of_its_size_is_invalid_geom(tmp_path, type_code, coordinates):
    geom = wkb_hex(True, type_code, coordinates)
    parsed = read_forecasts(forecasts_file(tmp_path, f"gid,geom,fcat24,fcat48\n1,{geom},0.1,0.2\n"))
    assert parsed.refused["reason"].to_list() == ["invalid_geom"]


def test_wkt_points_with_z_m_or_zm_are_read(tmp_path):
    text = (
        "gid,geom,fcat24,fcat48\n1,POINT Z (-1.25 6.75 120),0.1,0.2\n2,POINT M (-1.25 6.75 7),0.1,0.2\n"
        "3,SRID=4326;POINT ZM (-1.25 6.75 120 7),0.1,0.2\n"
    )
    parsed = read_forecasts(forecasts_file(tmp_path, text))
    assert parsed.refused.height == 0
    assert parsed.good.select("lat", "lon").rows() == [(LAT, LON)] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.10500", Decimal("0.105")),
        ("1.00000000", Decimal("1")),
        ("0.1234000", Decimal("0.1234")),
        (".50000", Decimal("0.5")),
    ],
)
def test_fcat_with_trailing_zeros_past_four_places_is_read(tmp_path, text, expected):
    parsed = read_forecasts(
        forecasts_file(tmp_path, f"gid,lat,lon,fcat24,fcat48\n1,6.7,-1.2,{text},{text}\n")
    )
    assert parsed.refused.height == 0
    assert parsed.good["fcat24"].to_list() == [expected] and parsed.good["fcat48"].to_list() == [expected]


@pytest.mark.parametrize("text", ["0.12345", "0.123450", "0.00001", "٠.٥"])
def test_fcat_with_more_than_four_significant_places_or_other_digits_is_invalid_fcat(tmp_path, text):
    parsed = read_forecasts(forecasts_file(tmp_path, f"gid,lat,lon,fcat24,fcat48\n1,6.7,-1.2,{text},0.5\n"))
    assert parsed.refused["reason"].to_list() == ["invalid_fcat"]


def test_an_issued_at_column_in_a_forecasts_file_is_not_an_error(tmp_path):
    text = (
        "gid,lat,lon,fcat24,fcat48,issued_at\n1,6.7,-1.2,0.1,0.2,2026-12-01T04:00:00Z\n"
        "2,6.8,-1.3,0.1,0.2,2026-12-01 04:00:00\n"
    )
    parsed = read_forecasts(forecasts_file(tmp_path, text))
    assert (parsed.rows_in, parsed.rows_refused) == (2, 0)
    assert parsed.good["gid"].to_list() == [1, 2]


def test_blank_lines_in_a_forecasts_file_are_skipped(tmp_path):
    text = "gid,lat,lon,fcat24,fcat48\n1,6.7,-1.2,0.1,0.2\n\n,,,,\n  ,  ,,\n2,6.8,-1.3,0.1,0.2\n\n\n"
    parsed = read_forecasts(forecasts_file(tmp_path, text))
    assert (parsed.rows_in, parsed.rows_refused, parsed.good.height) == (2, 0, 2)
