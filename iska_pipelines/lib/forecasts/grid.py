"""Nearest active grid point by great-circle distance (SPEC §4).

Points become 3-D unit vectors; on the unit sphere the straight-line (chord) distance grows
monotonically with the great-circle distance, so a cKDTree over the vectors answers nearest-point
questions exactly, in C, for a whole file at once. Ties go to the lowest gid.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

EARTH_RADIUS_KM = 6371.0088
NO_POINT = -1
# two grid points whose chord distances differ by less than this (about 6 mm) are a tie
TIE_TOLERANCE = 1e-9
NEIGHBOURS = 4


def unit_vectors(lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def chord_for_km(km: float) -> float:
    return float(2.0 * np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0))


def km_for_chord(chord: np.ndarray) -> np.ndarray:
    return np.asarray(2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)))


def haversine_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Reference great-circle distance, used by tests and the per-row fallback."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


class Grid:
    """The active grid points, ready for nearest-point queries."""

    def __init__(self, gids: ArrayLike, lats: ArrayLike, lons: ArrayLike) -> None:
        gids = np.asarray(gids, dtype=np.int64)
        order = np.argsort(gids, kind="stable")
        self.gids = gids[order]
        self._tree = (
            cKDTree(unit_vectors(np.asarray(lats)[order], np.asarray(lons)[order]))
            if len(self.gids)
            else None
        )

    def __len__(self) -> int:
        return len(self.gids)

    def nearest(self, lats: ArrayLike, lons: ArrayLike, max_km: float) -> tuple[np.ndarray, np.ndarray]:
        """(gid, distance in km) for each point; gid NO_POINT when none is within max_km."""
        count = len(np.asarray(lats))
        gids = np.full(count, NO_POINT, dtype=np.int64)
        km = np.full(count, np.inf)
        if self._tree is None or count == 0:
            return gids, km
        vectors = unit_vectors(lats, lons)
        bound = chord_for_km(max_km) * (1 + 1e-12)
        k = min(NEIGHBOURS, len(self.gids))
        distances, indices = self._tree.query(vectors, k=k, distance_upper_bound=bound)
        distances = distances.reshape(count, k)
        indices = indices.reshape(count, k)
        best = self._lowest_gid_among_ties(distances, indices)
        found = np.isfinite(distances[:, 0])
        gids[found] = self.gids[best[found]]
        km[found] = km_for_chord(distances[found, 0])
        crowded = found & (k < len(self.gids)) & (distances[:, -1] <= distances[:, 0] + TIE_TOLERANCE)
        if crowded.any():  # more equidistant points than neighbours asked for: ask for all ties
            for row in np.flatnonzero(crowded):
                tied = self._tree.query_ball_point(vectors[row], distances[row, 0] + TIE_TOLERANCE)
                gids[row] = self.gids[min(tied)]
        return gids, km

    @staticmethod
    def _lowest_gid_among_ties(distances: np.ndarray, indices: np.ndarray) -> np.ndarray:
        # indices are positions in gid order, so the smallest tied index is the lowest gid
        tied = distances <= distances[:, :1] + TIE_TOLERANCE
        candidates = np.where(tied, indices, np.iinfo(np.int64).max)
        return np.asarray(candidates.min(axis=1))
