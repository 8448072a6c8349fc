"""The built-in drill model against SUMO, drive by drive: where they agree, where not, and why.

Issue 13 asks the built-in drill model (``simulators.vehicles`` on the drill's fixed-time
signals) to agree with SUMO on the same scenario within a stated margin. For one seed and
demand this takes the batch drill's protected drives in its busiest window (the drives the SUMO
drill drives) and prints, for each and on average:

* the built-in model's travel time with the green wave (the drill's own drive) and without it
  (its paired fixed-time re-drive, :func:`simulators.baseline.drive_without`), and the time
  each spent standing at stop lines;
* SUMO's travel time with the live green wave and with bluelight only, and each one's
  ``waitingTime`` (seconds below 0.1 m/s, from tripinfo).

Comparing the arms one by one says which side of the gain the two models disagree on: the
baseline (what a red light costs an emergency vehicle), the priority arm (what a green wave
achieves in traffic), or plain driving (free-flow speeds).

    .venv/bin/python benchmarks/sumo_vs_model.py [--demand moderate] [--seed 11]
        [--window-s 1800] [--vehicles 24] [--bluelight]

``--bluelight`` runs the built-in model with :class:`simulators.vehicles.Bluelight` (a red is
crossed slowly under lights and siren, as SUMO's emergency vehicles do) instead of waiting for
green; the drives SUMO replays are then that model's.

Needs the 'sumo' extra and the shared Shanghai extract (../shared/data/osm).
"""

from __future__ import annotations

import argparse
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import _common  # noqa: F401  (puts the repository root first on sys.path)
from sumo_strategies import add_run_args, base_config, prepared, shanghai_router

from simulators.baseline import drive_without
from simulators.batch.engine import Engine
from simulators.config import DrillConfig
from simulators.scenarios import load_scenario
from simulators.sumo.drill import Strategy
from simulators.vehicles import Bluelight, VehicleSim


class Drive(NamedTuple):
    """One drive in both models (seconds; ``None``: SUMO's vehicle never arrived)."""

    vehicle_id: str
    signals: int
    model_with: float
    model_without: float
    model_wait_with: float
    model_wait_without: float
    sumo_with: float | None
    sumo_without: float | None
    sumo_wait_with: float | None
    sumo_wait_without: float | None


def _waits(tripinfo: Path) -> dict[str, float]:
    """``waitingTime`` of each emergency vehicle in a SUMO tripinfo file."""
    return {
        t.get("id", ""): float(t.get("waitingTime", "nan"))
        for t in ET.parse(tripinfo).getroot().iter("tripinfo")
        if t.get("id", "").startswith("ev")
    }


def _stood(vehicle: VehicleSim) -> float:
    return sum(p.wait_s for p in vehicle.passed)


def _pct(new: float, old: float) -> float:
    return 100.0 * (new - old) / old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, demand="moderate", window_s=1800.0, vehicles=24)
    ap.add_argument("--bluelight", action="store_true", help="the model crosses reds as SUMO")
    args = ap.parse_args()
    cfg = base_config(args)
    router = shanghai_router()
    drill = DrillConfig(bluelight=Bluelight() if args.bluelight else None)
    # The same engine, seed, scenario and tuning as prepared's protected_trips: the same drives
    # (run again here for their built-in times, which protected_trips does not return).
    engine = Engine(router, load_scenario(args.scenario), args.seed, drill, None, None)
    engine.run()
    drives = {f"ev{d.drive_id}": d for d in engine.drives}
    with prepared(args, cfg, router=router, drill=drill) as run:
        trips = run.trips
        base = run.arm(Strategy.BLUELIGHT, cfg, seed=args.seed)
        base_wait = _waits(run.work / f"tripinfo-{Strategy.BLUELIGHT.value}-{args.seed}.xml")
        arm = run.arm(Strategy.LIVE, cfg, seed=args.seed)
        arm_wait = _waits(run.work / f"tripinfo-{Strategy.LIVE.value}-{args.seed}.xml")
        sumo_with = {t.vehicle_id: t.travel_s for t in arm.trips}
        sumo_without = {t.vehicle_id: t.travel_s for t in base.trips}
        rows: list[Drive] = []
        for trip in trips:
            d = drives[trip.vehicle_id]
            if d.route != trip.route:
                raise SystemExit(
                    f"{trip.vehicle_id}: the two engine runs differ (not the same drive)"
                )
            again = drive_without(
                unit_id=d.unit_id, route=d.route, depart_s=d.depart_s, kind=d.kind,
                timings=engine.network.timings, flow_factor=engine.network.flow_factor,
                signal_nodes=engine.signal_nodes, signal_delay_s=router.profile.signal_delay_s,
                max_drive_s=drill.max_drive_s, bluelight=drill.bluelight,
            )  # fmt: skip
            assert d.vehicle.arrived_s is not None and again.arrived_s is not None
            rows.append(
                Drive(
                    trip.vehicle_id,
                    len(d.route.signals),
                    d.vehicle.arrived_s - d.depart_s,
                    again.arrived_s - d.depart_s,
                    _stood(d.vehicle),
                    _stood(again),
                    sumo_with.get(trip.vehicle_id),
                    sumo_without.get(trip.vehicle_id),
                    arm_wait.get(trip.vehicle_id),
                    base_wait.get(trip.vehicle_id),
                )
            )
    model = "bluelight" if args.bluelight else "waits for green"
    print(
        f"seed {args.seed}, {args.demand} demand, model {model}, {len(rows)} drives "
        "(seconds: travel with / without the green wave, and time standing still)"
    )
    print("drive     signals | model with  without  stood w/wo | SUMO with  without  stood w/wo")
    for r in rows:
        print(
            f"{r.vehicle_id:9} {r.signals:7} | {r.model_with:10.0f} {r.model_without:8.0f} "
            f"{r.model_wait_with:5.0f}/{r.model_wait_without:<5.0f}| "
            f"{r.sumo_with if r.sumo_with is not None else float('nan'):9.0f} "
            f"{r.sumo_without if r.sumo_without is not None else float('nan'):8.0f} "
            f"{r.sumo_wait_with if r.sumo_wait_with is not None else float('nan'):5.0f}/"
            f"{r.sumo_wait_without if r.sumo_wait_without is not None else float('nan'):.0f}"
        )
    both = [r for r in rows if r.sumo_with is not None and r.sumo_without is not None]
    if not both:
        print("no drive arrived in both SUMO arms")
        return

    def mean(values: list[float]) -> float:
        return statistics.fmean(values)

    m_with, m_without = mean([r.model_with for r in both]), mean([r.model_without for r in both])
    s_with = mean([r.sumo_with for r in both if r.sumo_with is not None])
    s_without = mean([r.sumo_without for r in both if r.sumo_without is not None])
    m_gain, s_gain = _pct(m_with, m_without), _pct(s_with, s_without)
    print(f"\nover the {len(both)} drives that arrived in both SUMO arms (mean seconds):")
    print(f"  model: with {m_with:.0f}, without {m_without:.0f}: {m_gain:+.1f}%")
    print(f"  SUMO:  with {s_with:.0f}, without {s_without:.0f}: {s_gain:+.1f}%")
    print(f"  the model's gain minus SUMO's: {m_gain - s_gain:+.1f} points")
    print(
        f"  arm by arm, model against SUMO: with {_pct(m_with, s_with):+.1f}%, "
        f"without {_pct(m_without, s_without):+.1f}%"
    )
    stood = [
        (
            "model",
            mean([r.model_wait_with for r in both]),
            mean([r.model_wait_without for r in both]),
        ),
        (
            "SUMO",
            mean([r.sumo_wait_with or 0.0 for r in both]),
            mean([r.sumo_wait_without or 0.0 for r in both]),
        ),
    ]
    for name, w, wo in stood:
        print(f"  {name:5} standing still: with {w:.0f} s, without {wo:.0f} s per drive")


if __name__ == "__main__":
    main()
