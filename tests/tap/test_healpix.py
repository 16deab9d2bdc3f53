"""Nested HEALPix: pixel numbers match healpy, cone ranges never miss a star."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sciplat.tap import healpix


def _sky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


@pytest.mark.parametrize("order", [0, 1, 5, 12, 20, 29])
def test_ang2pix_and_pix2vec_match_healpy(order: int) -> None:
    hp = pytest.importorskip("healpy")
    ra, dec = _sky(50_000, order)
    ours = healpix.ang2pix(order, ra, dec)
    assert np.array_equal(ours, hp.ang2pix(2**order, ra, dec, nest=True, lonlat=True))
    pix = np.random.default_rng(order).integers(0, 12 * 4**order, 2000)
    theirs = np.array(hp.pix2vec(2**order, pix, nest=True)).T
    assert np.abs(healpix.pix2vec(order, pix) - theirs).max() < 1e-12


def test_poles_edges_and_nan() -> None:
    pix = healpix.ang2pix(3, [0.0, 360.0, 0.0, 0.0, np.nan], [90.0, 0.0, -90.0, 0.0, 1.0])
    assert pix[-1] == -1
    assert (pix[:-1] >= 0).all() and (pix[:-1] < 12 * 4**3).all()
    assert pix[1] == healpix.ang2pix(3, [0.0], [0.0])[0]


@pytest.mark.parametrize("radius", [0.001, 0.05, 1.0, 7.5, 45.0, 120.0])
@pytest.mark.parametrize("centre", [(56.75, 24.12), (0.0, 89.9), (359.99, -45.0), (180.0, 0.0)])
def test_disc_ranges_cover_every_point_in_the_disc(
    radius: float, centre: tuple[float, float]
) -> None:
    ra0, dec0 = centre
    ranges = np.array(healpix.disc_ranges(12, ra0, dec0, radius))
    ra, dec = _sky(200_000, int(radius * 1000))
    # plus points packed near the centre, so small discs are tested too
    rng = np.random.default_rng(7)
    ra = np.concatenate([ra, ra0 + rng.normal(0, radius, 20_000)])
    dec = np.concatenate([dec, np.clip(dec0 + rng.normal(0, radius, 20_000), -90, 90)])
    inside = _angle(ra, dec, ra0, dec0) <= radius
    pix = healpix.ang2pix(12, ra, dec)
    idx = np.searchsorted(ranges[:, 0], pix, side="right") - 1
    covered = (idx >= 0) & (pix <= ranges[np.maximum(idx, 0), 1])
    assert covered[inside].all()


def _angle(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    r, d, r0, d0 = map(np.radians, (ra, dec, ra0, dec0))
    cos = np.sin(d) * math.sin(d0) + np.cos(d) * math.cos(d0) * np.cos(r - r0)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_small_cones_select_a_small_part_of_the_sky() -> None:
    ranges = healpix.disc_ranges(12, 56.75, 24.12, 1.0)
    covered = sum(hi - lo + 1 for lo, hi in ranges)
    assert len(ranges) <= 16
    assert covered / (12 * 4**12) < 0.001


@pytest.mark.parametrize("most", [1, 2, 3, 10])
def test_coarsen_covers_the_ranges_with_fewer(most: int) -> None:
    ranges = healpix.disc_ranges(12, 0.0, 89.9, 1.0)  # at the pole: many ranges
    assert len(ranges) > 3
    merged = healpix.coarsen(ranges, most)
    assert len(merged) == min(most, len(ranges))
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))  # sorted, apart
    for lo, hi in ranges:  # every range lies inside one merged range
        assert any(m_lo <= lo and hi <= m_hi for m_lo, m_hi in merged)
    # what is added is the smallest gaps: never more than closing all but the widest ones
    gaps = sorted(b[0] - a[1] for a, b in itertools.pairwise(ranges))
    added = sum(hi - lo + 1 for lo, hi in merged) - sum(hi - lo + 1 for lo, hi in ranges)
    assert added == sum(g - 1 for g in gaps[: len(ranges) - len(merged)])


def test_bad_order_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 29"):
        healpix.ang2pix(30, [0.0], [0.0])
