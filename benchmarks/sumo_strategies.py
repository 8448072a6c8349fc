"""Green-wave strategies in SUMO: vehicle time saved against cross-street and network delay.

Runs the SUMO drill's arms (``simulators.sumo.drill``) for one seed and demand: the bluelight
baseline once, then the ``live`` strategy with each controller variant below, and prints one
line per variant with the emergency travel change, the cross delay at the served lights and the
whole network's delay change, all against the baseline of the same run. With ``--seeds`` it
does so per seed and then summarizes each variant over them (one seed's figures move by more
than most variants do: a changed light changes the whole run's traffic).

    .venv/bin/python benchmarks/sumo_strategies.py [--demand low] [--seed 11] [--window-s 900]
        [--vehicles 8] [--seeds 11,12,13]
        [--variants default,legacy,nolate,queue,nostall,atdepart,comp05,noext,ext10,retime25]

Needs the 'sumo' extra and the shared Shanghai extract (../shared/data/osm).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import _common  # noqa: F401  (puts the repository root first on sys.path)

from routing import Router, default_cache_dir
from routing.greenwave import GreenWaveConfig
from simulators.config import DrillConfig
from simulators.scenarios import load_scenario
from simulators.sumo._traci import libsumo_run, sumo_argv
from simulators.sumo.controller import ControllerConfig
from simulators.sumo.drill import (
    ArmResult,
    Demand,
    EmergencyTrip,
    StepProbe,
    Strategy,
    StrategyFigures,
    SumoDrillConfig,
    background_routes,
    compare,
    ev_types_file,
    lane_km,
    protected_trips,
    run_arm,
)
from simulators.sumo.network import SumoNetwork, build_network

VARIANTS: dict[str, ControllerConfig] = {
    "default": ControllerConfig(),
    "comp05": ControllerConfig(compensation_share=0.5),
    "nocomp": ControllerConfig(compensation_share=0.0),
    "noext": ControllerConfig(max_extension_s=0),
    "nocut": ControllerConfig(min_green_s=999, pedestrian_green_s=999),
    "ext10": ControllerConfig(max_extension_s=10),
    "lead5": ControllerConfig(max_lead_s=5),
    # Before issue 13's lead-time work: rejected when not in time by the ETA, never queued,
    # held for a vehicle that stands.
    "nolate": ControllerConfig(late_green_s=0),
    "queue": ControllerConfig(queue_conflicts=True),
    "nostall": ControllerConfig(stall_s=0),
    "legacy": ControllerConfig(late_green_s=0, queue_conflicts=False, stall_s=0),
    # Issue 13, cross street: compensation not held back by far or standing vehicles' grants;
    # a shorter extension cap.
    "paysoon": ControllerConfig(pay_horizon_cycles=1.0),
    "paysoonrel": ControllerConfig(pay_horizon_cycles=1.0),
    "payext10": ControllerConfig(pay_horizon_cycles=1.0, max_extension_s=10),
    "payext20": ControllerConfig(pay_horizon_cycles=1.0, max_extension_s=20),
}
# Variants of the drill itself: "legacy" also plans at departure, not at the assignment.
DRILL_VARIANTS: dict[str, dict[str, object]] = {
    "legacy": {"plan_at_dispatch": False},
    "atdepart": {"plan_at_dispatch": False},
    "release": {"release_at_stop_line": True},  # holds end at the stop line (issue 13)
    "paysoonrel": {"release_at_stop_line": True},
}
# Variants of the plan's messages (the controllers' defaults).
GW_VARIANTS: dict[str, GreenWaveConfig] = {
    "retime25": GreenWaveConfig(retime_share=0.25),  # a quarter of the window, at least 2 s
    "retime1": GreenWaveConfig(retime_s=1.0),
    "retime4": GreenWaveConfig(retime_s=4.0),
}
SHANGHAI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "osm"


def add_run_args(
    ap: argparse.ArgumentParser, *, demand: str, window_s: float, vehicles: int
) -> None:
    """The options every SUMO benchmark takes (the defaults differ per benchmark)."""
    ap.add_argument("--demand", default=demand, choices=[d.value for d in Demand])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--window-s", type=float, default=window_s)
    ap.add_argument("--vehicles", type=int, default=vehicles)
    ap.add_argument("--scenario", default="mixed-day")


def base_config(args: argparse.Namespace) -> SumoDrillConfig:
    """The drill's configuration the options ask for."""
    return SumoDrillConfig(
        demand=Demand(args.demand), window_s=args.window_s, max_vehicles=args.vehicles
    )


def with_variant(cfg: SumoDrillConfig, name: str) -> SumoDrillConfig:
    """``cfg`` with the plan, controller and drill variant called ``name`` (if any)."""
    if name in GW_VARIANTS:
        cfg = cfg.model_copy(update={"greenwave": GW_VARIANTS[name]})
    elif name in VARIANTS:
        cfg = cfg.model_copy(update={"controller": VARIANTS[name]})
    return cfg.model_copy(update=DRILL_VARIANTS.get(name, {}))


class Setup(NamedTuple):
    """What the arms of one run share: network, protected trips, background traffic."""

    net: SumoNetwork
    trips: list[EmergencyTrip]
    background: Path
    types: Path
    end_s: float
    work: Path

    def arm(
        self,
        strategy: Strategy,
        cfg: SumoDrillConfig,
        *,
        seed: int,
        measure: ArmResult | None = None,
        on_step: StepProbe | None = None,
    ) -> ArmResult:
        """One SUMO run of this set-up's trips (:func:`simulators.sumo.drill.run_arm`)."""
        return run_arm(
            self.net, self.trips, self.background, self.types, strategy, cfg, seed=seed,
            end_s=self.end_s, work=self.work, measure=measure, on_step=on_step,
        )  # fmt: skip


def shanghai_router() -> Router:
    """The router of the shared Shanghai extract (its hierarchy cached)."""
    return Router.from_file((SHANGHAI / "shanghai_center.osm").resolve())


@contextlib.contextmanager
def prepared(
    args: argparse.Namespace,
    cfg: SumoDrillConfig,
    *,
    router: Router | None = None,
    drill: DrillConfig | None = None,
) -> Iterator[Setup]:
    """The Shanghai network, the trips ``cfg`` protects and the background demand, in a
    scratch folder that lives as long as the context (``router``: the Shanghai router if
    the caller has it; ``drill``: the batch model's tuning that picks the trips)."""
    osm = (SHANGHAI / "shanghai_center.osm").resolve()
    router = router or shanghai_router()
    net = build_network(osm, default_cache_dir().parent / "sumo" / osm.stem, graph=router.graph)
    trips, _, _ = protected_trips(router, net, load_scenario(args.scenario), args.seed, cfg, drill)
    end_s = cfg.warmup_s + cfg.window_s + cfg.tail_s
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with libsumo_run(sumo_argv(net.net_file)) as conn:
            km = lane_km(conn)
        bg = background_routes(
            net, work, demand=cfg.demand, seed=args.seed, end_s=end_s, lane_km_total=km
        )
        yield Setup(net, trips, bg, ev_types_file(work, cfg), end_s, work)


class Row(NamedTuple):
    """One variant on one seed, against that seed's baseline."""

    variant: str
    seed: int
    figures: StrategyFigures
    cross_with: float  # veh-s halted on the cross lanes over the spans, priority arm
    cross_without: float  # the same lanes and seconds in the baseline
    lost: int  # vehicles that arrived in the baseline and not with priority
    found: int  # and the other way round


def run_seed(args: argparse.Namespace, variants: list[str]) -> list[Row]:
    """The baseline of ``args.seed``, then each variant against it; one line per variant."""
    cfg = base_config(args)
    rows: list[Row] = []
    with prepared(args, cfg) as run:
        base = run.arm(Strategy.BLUELIGHT, cfg, seed=args.seed)
        print(f"seed {args.seed}: {len(run.trips)} emergency vehicles, {base.background_vehicles} "
              f"background, baseline {base.wall_s:.1f} s")  # fmt: skip
        print("variant      travel%  cross%  cross-worst%  network%  lights  wall_s  messages")
        for name in variants:
            vcfg = with_variant(cfg, name)
            arm = run.arm(Strategy.LIVE, vcfg, seed=args.seed)
            again = run.arm(Strategy.BLUELIGHT, cfg, seed=args.seed, measure=arm)
            f = compare(Strategy.LIVE, args.seed, arm, again)
            came = {t.vehicle_id for t in arm.trips if t.travel_s is not None}
            came_base = {t.vehicle_id for t in again.trips if t.travel_s is not None}
            print(
                f"{name:10} {f.travel_change_pct!s:>8} {f.cross_delay_added_pct!s:>7} "
                f"{f.cross_delay_added_pct_worst!s:>13} {f.network_delay_added_pct!s:>9} "
                f"{f.lights_touched:>7} {arm.wall_s:>7.1f} {f.requests_sent:>9}"
            )
            print(f"           served {f.served}, rejected {f.rejected}: {f.rejected_by_reason}; "
                  f"arrived {len(came)} with, {len(came_base)} without")  # fmt: skip
            rows.append(
                Row(
                    name,
                    args.seed,
                    f,
                    sum(arm.cross_halt_veh_s.values()),
                    sum(again.cross_halt_veh_s.values()),
                    len(came_base - came),
                    len(came - came_base),
                )
            )
    return rows


def summarize(rows: list[Row], variants: list[str]) -> None:
    """Per variant over the seeds: mean and range of each figure, cross delay pooled too."""
    print("\nover seeds " + ",".join(str(s) for s in sorted({r.seed for r in rows})) + ":")
    # The cross delay's % is over each variant's own disturbed spans (a variant that returns
    # to its program sooner has fewer seconds under it): the veh-s it adds compare across them.
    print("variant    travel% mean [min, max]   cross% mean [min, max] pooled  added veh-s/seed  "
          "network% mean [min, max]   served rejected lost")  # fmt: skip
    for name in variants:
        mine = [r for r in rows if r.variant == name]

        def spread(values: list[float | None]) -> str:
            got = [v for v in values if v is not None]
            if not got:
                return "-"
            return f"{statistics.fmean(got):+6.1f} [{min(got):+6.1f}, {max(got):+6.1f}]"

        w = sum(r.cross_with for r in mine)
        b = sum(r.cross_without for r in mine)
        pooled = f"{100 * (w - b) / b:+6.1f}" if b > 0 else "-"
        print(
            f"{name:10} {spread([r.figures.travel_change_pct for r in mine])}   "
            f"{spread([r.figures.cross_delay_added_pct for r in mine])} {pooled}  "
            f"{(w - b) / max(len(mine), 1):+16.0f}  "
            f"{spread([r.figures.network_delay_added_pct for r in mine])}   "
            f"{sum(r.figures.served for r in mine):6} {sum(r.figures.rejected for r in mine):8} "
            f"{sum(r.lost for r in mine):4}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, demand="low", window_s=900.0, vehicles=8)
    ap.add_argument("--variants", default="default,comp05,noext,nocut,ext10")
    ap.add_argument(
        "--seeds", default="", help="comma-separated seeds (instead of --seed), then a summary"
    )
    args = ap.parse_args()
    variants = args.variants.split(",")
    seeds = [int(x) for x in args.seeds.split(",") if x] or [args.seed]
    started = time.perf_counter()
    rows: list[Row] = []
    for seed in seeds:
        rows += run_seed(argparse.Namespace(**{**vars(args), "seed": seed}), variants)
    if len(seeds) > 1:
        summarize(rows, variants)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
