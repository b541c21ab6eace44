"""Points given as `geom`: WKT/EWKT `POINT(lon lat)` or hex (E)WKB, in WGS 84."""

from __future__ import annotations

import re
import struct

WKT_POINT = re.compile(
    r"^\s*(?:SRID=(?P<srid>\d+)\s*;\s*)?POINT\s*Z?\s*\(\s*(?P<x>[-+0-9.eE]+)\s+(?P<y>[-+0-9.eE]+)"
    r"(?:\s+[-+0-9.eE]+)?\s*\)\s*$",
    re.IGNORECASE,
)
HEX = re.compile(r"^[0-9A-Fa-f]+$")
WGS84 = 4326
_WKB_POINT = 1
_EWKB_SRID_FLAG = 0x20000000
_EWKB_Z_FLAG = 0x80000000


def parse_point(text: str | None) -> tuple[float, float] | None:
    """(lat, lon) of a WKT/EWKT or hex (E)WKB point, or None when it is not one."""
    if text is None:
        return None
    text = text.strip()
    match = WKT_POINT.match(text)
    if match:
        if match["srid"] and int(match["srid"]) != WGS84:
            return None
        try:
            return float(match["y"]), float(match["x"])
        except ValueError:
            return None
    if HEX.match(text) and len(text) % 2 == 0:
        return _parse_wkb(bytes.fromhex(text))
    return None


def _parse_wkb(data: bytes) -> tuple[float, float] | None:
    if len(data) < 21 or data[0] not in (0, 1):
        return None
    order = "<" if data[0] == 1 else ">"
    (geometry_type,) = struct.unpack_from(order + "I", data, 1)
    offset = 5
    if geometry_type & _EWKB_SRID_FLAG:
        if len(data) < 25:
            return None
        (srid,) = struct.unpack_from(order + "I", data, offset)
        offset += 4
        if srid != WGS84:
            return None
    has_z = bool(geometry_type & _EWKB_Z_FLAG) or (geometry_type % 1000) // 1000 == 1
    base_type = (geometry_type & 0x0FFFFFFF) % 1000
    if base_type != _WKB_POINT:
        return None
    expected = offset + (24 if has_z else 16)
    if len(data) != expected:
        return None
    x, y = struct.unpack_from(order + "dd", data, offset)
    return y, x
