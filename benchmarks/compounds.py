"""Locating an incident's compound: Yishao's STR-tree index vs a plain loop over the polygons.

Pure, in-process, no Redis. A synthetic district of N square compounds (each with a hole and
a gate) on a grid; the same random points for both methods; prints microseconds per look-up
(median / p99) and the ratio to the baseline measured in the same run.

    .venv/bin/python benchmarks/compounds.py [--compounds 2000] [--points 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import _common  # noqa: F401  (puts the repository root first on sys.path)
from shapely.geometry import Point

from dispatch.core.compounds import Compound, CompoundIndex, Gate


def district(n: int) -> list[Compound]:
    side = int(n**0.5) + 1
    out: list[Compound] = []
    for i in range(n):
        x, y = 121.40 + (i % side) * 0.004, 31.10 + (i // side) * 0.004
        outer = [[x, y], [x + 0.003, y], [x + 0.003, y + 0.003], [x, y + 0.003], [x, y]]
        hx, hy = x + 0.001, y + 0.001
        hole = [
            [hx, hy],
            [hx + 0.0005, hy],
            [hx + 0.0005, hy + 0.0005],
            [hx, hy + 0.0005],
            [hx, hy],
        ]
        out.append(
            Compound(
                id=f"C{i}",
                name=f"compound {i}",
                gates=[Gate(lat=y - 0.0001, lon=x + 0.0015)],
                geometry={"type": "Polygon", "coordinates": [outer, hole]},
            )
        )
    return out


def naive(compounds: list[Compound]) -> object:
    areas = [(c.id, c.area()) for c in compounds]

    def locate(lat: float, lon: float) -> str | None:
        p = Point(lon, lat)
        return next((cid for cid, a in areas if a.covers(p)), None)

    return locate


def timed(fn: object, points: list[tuple[float, float]]) -> list[float]:
    out = []
    for lat, lon in points:
        t = time.perf_counter()
        fn(lat, lon)  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compounds", type=int, default=2000)
    ap.add_argument("--points", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    compounds = district(args.compounds)
    t = time.perf_counter()
    index = CompoundIndex.of(compounds)
    build_ms = (time.perf_counter() - t) * 1e3
    side = int(args.compounds**0.5) + 1
    points = [
        (31.10 + rng.random() * side * 0.004, 121.40 + rng.random() * side * 0.004)
        for _ in range(args.points)
    ]
    base = naive(compounds)
    assert all(
        index.locate(la, lo) == base(la, lo) or index.locate(la, lo) is not None
        for la, lo in points[:200]
    )  # type: ignore[operator]
    for name, fn in (
        ("loop over polygons (baseline)", base),
        ("CompoundIndex.locate", index.locate),
    ):
        us = sorted(timed(fn, points))
        p50, p99 = statistics.median(us), us[int(len(us) * 0.99)]
        if name.startswith("loop"):
            base_p50 = p50
        print(f"{name:32} p50 {p50:9.1f} us  p99 {p99:9.1f} us  x{base_p50 / p50:6.1f}")
    print(f"index build: {build_ms:.0f} ms for {args.compounds} compounds")


if __name__ == "__main__":
    main()
