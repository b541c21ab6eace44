"""Points given as `geom`: WKT/EWKT `POINT(lon lat)` or hex (E)WKB, in WGS 84.

Both may carry Z and/or M after lon and lat (ignored). WKB type codes come in two dialects:
ISO (1 = 2D, 1001 = Z, 2001 = M, 3001 = ZM) and EWKB (1 with the flags 0x80000000 = Z,
0x40000000 = M, 0x20000000 = an SRID follows); both byte orders.
"""

from __future__ import annotations

import re
import struct

WKT_POINT = re.compile(
    r"^\s*(?:SRID=(?P<srid>[0-9]+)\s*;\s*)?POINT\s*(?P<dims>ZM|Z|M)?\s*"
    r"\(\s*(?P<x>[-+0-9.eE]+)\s+(?P<y>[-+0-9.eE]+)(?P<extra>(?:\s+[-+0-9.eE]+){0,2})\s*\)\s*$",
    re.IGNORECASE,
)
HEX = re.compile(r"^[0-9A-Fa-f]+$")
WGS84 = 4326
_WKB_POINT = 1
_EWKB_Z_FLAG = 0x80000000
_EWKB_M_FLAG = 0x40000000
_EWKB_SRID_FLAG = 0x20000000
_EWKB_FLAGS = _EWKB_Z_FLAG | _EWKB_M_FLAG | _EWKB_SRID_FLAG
# ISO thousands: how many coordinates beyond x and y (Z, M, ZM)
_ISO_EXTRA = {0: 0, 1: 1, 2: 1, 3: 2}


def parse_point(text: str | None) -> tuple[float, float] | None:
    """(lat, lon) of a WKT/EWKT or hex (E)WKB point, or None when it is not one."""
    if text is None:
        return None
    text = text.strip()
    match = WKT_POINT.match(text)
    if match:
        return _wkt_point(match)
    if HEX.match(text) and len(text) % 2 == 0:
        return _parse_wkb(bytes.fromhex(text))
    return None


def _wkt_point(match: re.Match[str]) -> tuple[float, float] | None:
    if match["srid"] and int(match["srid"]) != WGS84:
        return None
    extra = len(match["extra"].split())
    dims = (match["dims"] or "").upper()
    if dims and extra != len(dims):  # POINT Z/M carries one more number, POINT ZM two
        return None
    if not dims and extra > 1:  # bare POINT(x y z) is the common 3D spelling; four is not
        return None
    try:
        return float(match["y"]), float(match["x"])
    except ValueError:
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
    code = geometry_type & ~_EWKB_FLAGS
    iso_dims, base_type = divmod(code, 1000)
    if base_type != _WKB_POINT or iso_dims not in _ISO_EXTRA:
        return None
    extra = _ISO_EXTRA[iso_dims] + bool(geometry_type & _EWKB_Z_FLAG) + bool(geometry_type & _EWKB_M_FLAG)
    if extra > 2 or len(data) != offset + 8 * (2 + extra):
        return None
    x, y = struct.unpack_from(order + "dd", data, offset)
    return y, x
