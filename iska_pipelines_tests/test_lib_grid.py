"""Nearest grid point by great-circle distance, ties to the lowest gid (SPEC §4)."""

import numpy as np

from iska_pipelines.lib.forecasts.grid import NO_POINT, Grid, haversine_km


def brute_force(grid_gids, grid_lat, grid_lon, lat, lon, max_km):
    distances = haversine_km(lat, lon, grid_lat, grid_lon)
    best = distances.min()
    if best > max_km:
        return NO_POINT, best
    tied = np.abs(distances - best) < 1e-6
    return int(grid_gids[tied].min()), best


def test_nearest_agrees_with_brute_force_haversine_on_10000_random_points():
    rng = np.random.default_rng(20210205)
    gids = rng.permutation(np.arange(100_001, 102_001))
    grid_lat = rng.uniform(4.5, 11.2, gids.size)
    grid_lon = rng.uniform(-3.3, 1.2, gids.size)
    lat = rng.uniform(4.0, 11.7, 10_000)
    lon = rng.uniform(-3.8, 1.7, 10_000)
    found, km = Grid(gids, grid_lat, grid_lon).nearest(lat, lon, max_km=25.0)
    mismatches = 0
    for i in range(lat.size):
        expected, expected_km = brute_force(gids, grid_lat, grid_lon, lat[i], lon[i], 25.0)
        if found[i] != expected:
            mismatches += 1
        elif expected != NO_POINT:
            assert abs(km[i] - expected_km) < 1e-6
    assert mismatches == 0
    assert (found == NO_POINT).any() and (found != NO_POINT).any()


def test_a_point_equidistant_from_four_grid_points_goes_to_the_lowest_gid():
    # a regular 0.1 degree grid on the equator; the query sits exactly between 4 points
    lats = np.array([-0.05, -0.05, 0.05, 0.05])
    lons = np.array([-0.05, 0.05, -0.05, 0.05])
    gids = np.array([40, 30, 20, 10])
    found, _ = Grid(gids, lats, lons).nearest(np.array([0.0]), np.array([0.0]), max_km=50)
    assert found[0] == 10


def test_ties_beyond_the_first_neighbours_still_go_to_the_lowest_gid():
    # eight points on a circle around the pole: all equidistant from it
    angles = np.arange(8) * 45.0
    found, _ = Grid(np.arange(80, 0, -10), np.full(8, 89.9), angles - 180).nearest(
        np.array([90.0]), np.array([0.0]), max_km=50
    )
    assert found[0] == 10


def test_no_point_within_the_limit_means_no_lid():
    found, km = Grid([1], [5.0], [0.0]).nearest(np.array([6.0]), np.array([0.0]), max_km=50)
    assert found[0] == NO_POINT and np.isinf(km[0])


def test_an_empty_grid_assigns_nothing():
    found, _ = Grid([], [], []).nearest(np.array([6.0]), np.array([0.0]), max_km=50)
    assert found[0] == NO_POINT
