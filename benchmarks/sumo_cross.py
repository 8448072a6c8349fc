"""Where the green wave's cross-street cost comes from in SUMO, and whether its measure is fair.

Runs one ``live`` arm of the SUMO drill (a controller variant of ``sumo_strategies.py``) and its
bluelight baseline over the same seconds, watching both every step through ``run_arm``'s
``on_step`` probe (the product path is not changed), and prints the drill's cross-delay figure
broken down:

* **per light**: the served lights sorted by the vehicle-seconds they add, with the share of
  the total the worst few carry;
* **per lane class**: the drill's cross lanes split into *co-green* lanes (a link of theirs is
  green in a phase the vehicles' grants asked for: the opposing through movement, which gains
  from an extension) and *conflicting* ones (no such link: the real cross street), and the
  vehicle's own approach lanes the drill leaves out;
* **per mechanism**: each disturbed span of a light (the drill's spans) labelled by what its
  controller did in it: a green held past its program end (extension), a green cut short
  (early green), neither; and whether any grant held in it was served (holds that were
  rejected or cancelled without green cost with no gain);
* **the vehicle itself**: cross halts in the seconds around each emergency vehicle's own
  passage of the light, in each arm (a bluelight vehicle passes red, slowly, yielding), and how
  many of the baseline's passages fall outside the spans (a disturbance the baseline has but
  the measure does not see);
* **the vehicle's time**: its ``timeLoss`` and ``waitingTime`` from SUMO's tripinfo, the share
  of it standing before a red light and before a green one (queued) in the baseline: what any
  green wave can win at most.

    cd benchmarks && python sumo_cross.py [--demand moderate] [--seed 11] [--window-s 1800]
        [--vehicles 24] [--variant default]

Needs the 'sumo' extra and the shared Shanghai extract (../shared/data/osm).
"""

from __future__ import annotations

import argparse
import statistics
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository root first on sys.path)
from sumo_strategies import add_run_args, base_config, prepared, with_variant

from simulators.sumo._traci import TraciLights
from simulators.sumo.controller import PhaseKind
from simulators.sumo.drill import ArmResult, Strategy, compare
from simulators.sumo.gateway import GatewayCore

RED = frozenset("rRsS")  # a link state that stops the vehicle (SUMO: red, stop sign)
NEAR_M = 60.0  # "before a light": its stop line this close ahead
MECHANISM = {
    (True, True): "extension+early",
    (True, False): "extension",
    (False, True): "early green",
    (False, False): "neither",
}


@dataclass(slots=True)
class Probe:
    """What one arm showed every second."""

    lanes: dict[str, list[str]] = field(default_factory=dict)  # light -> incoming lanes watched
    halts: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    # priority arm only: light -> second -> (extended, cut, held request ids, run start)
    state: dict[str, dict[int, tuple[bool, bool, tuple[str, ...], float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    targets: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    greens: dict[str, list[str]] = field(default_factory=dict)  # light -> green phases' states
    links_of: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    passes: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    # emergency vehicle -> seconds halted before a red light / a green one / elsewhere
    halted_red: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    halted_green: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    halted_other: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    slow_red: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    next_tls: dict[str, str] = field(default_factory=dict)
    core: GatewayCore | None = None
    fixed: bool = False  # the lanes are given (the baseline watches the priority arm's)

    def __call__(self, conn: Any, now: float, lights: TraciLights, core: GatewayCore) -> None:
        self.core = core
        t = int(now)
        if not self.fixed:
            for tls_id, ctrl in lights.controllers.items():
                if tls_id not in self.lanes:
                    self._watch(conn, tls_id)
                    self.greens[tls_id] = [p.state for p in ctrl.program.phases]
                run = ctrl.run
                spec = ctrl.program.phases[run.index]
                held = tuple(sorted(ctrl.held))
                for h in ctrl.held.values():
                    self.targets[tls_id] |= set(h.targets)
                if not held and ctrl.idle:
                    continue
                extended = (
                    spec.kind is PhaseKind.GREEN
                    and bool(run.held_for)
                    and now > run.start_s + max(run.planned_s, spec.duration_s)
                )
                self.state[tls_id][t] = (extended, run.cut, held, run.start_s)
        for tls_id, lanes in self.lanes.items():
            for lane in lanes:
                n = int(conn.lane.getLastStepHaltingNumber(lane))
                if n:
                    self.halts.setdefault((tls_id, lane), {})[t] = n
        for vid in conn.vehicle.getIDList():
            if not str(vid).startswith("ev"):
                continue
            ahead = conn.vehicle.getNextTLS(vid)
            first = str(ahead[0][0]) if ahead else ""
            before = self.next_tls.get(vid)
            if before and before != first:
                self.passes[before].append((vid, t))
            self.next_tls[vid] = first
            speed = float(conn.vehicle.getSpeed(vid))
            near = bool(ahead) and float(ahead[0][2]) <= NEAR_M
            red = near and str(ahead[0][3]) in RED
            if speed < 0.1:
                if red:
                    self.halted_red[vid] += 1
                elif near:
                    self.halted_green[vid] += 1
                else:
                    self.halted_other[vid] += 1
            elif red and speed < 6.0:
                self.slow_red[vid] += 1

    def _watch(self, conn: Any, tls_id: str) -> None:
        lanes = [
            str(x)
            for x in dict.fromkeys(conn.trafficlight.getControlledLanes(tls_id))
            if not str(x).startswith(":")
        ]
        self.lanes[tls_id] = lanes
        for index, links in enumerate(conn.trafficlight.getControlledLinks(tls_id)):
            for lk in links:
                self.links_of.setdefault((tls_id, str(lk[0])), set()).add(index)

    def total(self, tls_id: str, lane: str, spans: list[tuple[float, float]]) -> int:
        series = self.halts.get((tls_id, lane), {})
        return sum(n for t, n in series.items() if any(lo <= t < hi for lo, hi in spans))


def tripinfo_evs(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """Emergency vehicles' (duration, timeLoss, waitingTime, departDelay) from SUMO's tripinfo."""
    out: dict[str, tuple[float, float, float, float]] = {}
    for _, el in ET.iterparse(path):
        if el.tag == "tripinfo" and str(el.get("id", "")).startswith("ev"):
            out[str(el.get("id"))] = (
                float(el.get("duration", "0")),
                float(el.get("timeLoss", "0")),
                float(el.get("waitingTime", "0")),
                float(el.get("departDelay", "0")),
            )
        el.clear()
    return out


def pct(new: float, old: float) -> str:
    return "-" if old <= 0 else f"{100.0 * (new - old) / old:+.1f}%"


def lane_class(probe: Probe, tls_id: str, lane: str) -> str:
    """How a lane's links fare in the phases the grants at the light asked for: all green
    (``co-green``: the opposing through, say), some (``partly``: a shared lane, or a right turn
    green in every phase), none (``conflicting``: the cross street)."""
    states = [probe.greens[tls_id][k] for k in probe.targets.get(tls_id, set())]
    links = probe.links_of.get((tls_id, lane), set())
    green = {i for i in links if any(i < len(s) and s[i] in "Gg" for s in states)}
    if green and green == links:
        return "co-green"
    return "partly" if green else "conflicting"


def episodes(
    probe: Probe, tls_id: str, spans: list[tuple[float, float]]
) -> list[tuple[float, float, bool, bool, set[str]]]:
    """The drill's spans of a light, each with: any extension, any cut, the requests held."""
    out = []
    seen = probe.state.get(tls_id, {})
    for lo, hi in spans:
        ext = cut = False
        rids: set[str] = set()
        for t in range(int(lo), int(hi)):
            s = seen.get(t)
            if s is None:
                continue
            ext |= s[0]
            cut |= s[1]
            rids |= set(s[2])
        out.append((lo, hi, ext, cut, rids))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, demand="moderate", window_s=1800.0, vehicles=24)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--top", type=int, default=12, help="lights listed")
    args = ap.parse_args()
    cfg = base_config(args)
    vcfg = with_variant(cfg, args.variant)
    live, base = Probe(), Probe(fixed=True)
    with prepared(args, cfg) as run:
        arm = run.arm(Strategy.LIVE, vcfg, seed=args.seed, on_step=live)
        ev_live = tripinfo_evs(run.work / f"tripinfo-live-{args.seed}.xml")
        base.lanes = dict(live.lanes)
        again = run.arm(Strategy.BLUELIGHT, cfg, seed=args.seed, measure=arm, on_step=base)
        ev_base = tripinfo_evs(run.work / f"tripinfo-bluelight-{args.seed}.xml")
    report(args, arm, again, live, base, ev_live, ev_base)


def report(
    args: argparse.Namespace,
    arm: ArmResult,
    again: ArmResult,
    live: Probe,
    base: Probe,
    ev_live: dict[str, tuple[float, float, float, float]],
    ev_base: dict[str, tuple[float, float, float, float]],
) -> None:
    f = compare(Strategy.LIVE, args.seed, arm, again)
    print(f"variant {args.variant}, seed {args.seed}: travel {f.travel_change_pct}%, cross "
          f"{f.cross_delay_added_pct}%, network {f.network_delay_added_pct}%, served {f.served}, "
          f"rejected {f.rejected}, lights {f.lights_touched}")  # fmt: skip
    outcome: dict[str, str] = {}
    assert live.core is not None
    for r in live.core.reports:
        ok = r.status == "served" or (r.status == "cancelled" and r.green_s > 0)
        if ok or r.request_id not in outcome:
            outcome[r.request_id] = "served" if ok else r.status
    # -- per light (the drill's own lanes and spans: these sums are its figure) -------------
    rows = []
    for tls_id, spans in arm.disturbed.items():
        w = arm.cross_halt_veh_s.get(tls_id, 0.0)
        b = again.cross_halt_veh_s.get(tls_id, 0.0)
        span_s = sum(hi - lo for lo, hi in spans)
        rows.append((w - b, tls_id, w, b, span_s, len(spans)))
    rows.sort(reverse=True)
    total_w = sum(r[2] for r in rows)
    total_b = sum(r[3] for r in rows)
    added = total_w - total_b
    print(f"\ncross halts over the spans: with {total_w:.0f}, without {total_b:.0f} veh-s, "
          f"added {added:+.0f} ({pct(total_w, total_b)}) at {len(rows)} lights, "
          f"{sum(r[4] for r in rows):.0f} span-s")  # fmt: skip
    pos = sorted((r[0] for r in rows if r[0] > 0), reverse=True)
    neg = sum(r[0] for r in rows if r[0] < 0)
    gaining = sum(1 for r in rows if r[0] < 0)
    same = sum(1 for r in rows if r[0] == 0)
    print(f"  lights adding: {len(pos)} (+{sum(pos):.0f}), lights gaining: {gaining} "
          f"({neg:.0f}), unchanged {same}")  # fmt: skip
    for k in (1, 3, 5, 10):
        print(f"  worst {k:2}: {sum(pos[:k]):+.0f} veh-s = {100 * sum(pos[:k]) / added:.0f}% of "
              f"the net added" if added else "")  # fmt: skip
    print(f"  {'light':28} {'with':>7} {'without':>7} {'added':>7} {'span_s':>7} spans")
    for d, tls_id, w, b, span_s, n in rows[: args.top]:
        print(f"  {tls_id[:28]:28} {w:7.0f} {b:7.0f} {d:+7.0f} {span_s:7.0f} {n:5}")
    print("  ...")
    for d, tls_id, w, b, span_s, n in rows[-3:]:
        print(f"  {tls_id[:28]:28} {w:7.0f} {b:7.0f} {d:+7.0f} {span_s:7.0f} {n:5}")
    # -- per lane class -------------------------------------------------------------------------
    cls_w: dict[str, float] = defaultdict(float)
    cls_b: dict[str, float] = defaultdict(float)
    lanes_n: dict[str, int] = defaultdict(int)
    worst = {r[1] for r in rows[:2]}
    top_w: dict[str, float] = defaultdict(float)
    top_b: dict[str, float] = defaultdict(float)
    for tls_id, spans in arm.disturbed.items():
        cross = set(arm.cross_lanes.get(tls_id, []))
        for lane in live.lanes.get(tls_id, []):
            kind = "approach (left out)" if lane not in cross else lane_class(live, tls_id, lane)
            w, b = live.total(tls_id, lane, spans), base.total(tls_id, lane, spans)
            cls_w[kind] += w
            cls_b[kind] += b
            lanes_n[kind] += 1
            if tls_id in worst:
                top_w[kind] += w
                top_b[kind] += b
    print("\nby lane class (same spans): with / without / added")
    for kind in ("conflicting", "partly", "co-green", "approach (left out)"):
        print(f"  {kind:20} {lanes_n[kind]:5} lanes {cls_w[kind]:8.0f} {cls_b[kind]:8.0f} "
              f"{cls_w[kind] - cls_b[kind]:+8.0f} ({pct(cls_w[kind], cls_b[kind])})")  # fmt: skip
    print(
        "  of them at the two worst lights: "
        + ", ".join(f"{k} {top_w[k] - top_b[k]:+.0f}" for k in sorted(top_w))
    )
    all_w = sum(cls_w.values())
    all_b = sum(cls_b.values())
    print(
        f"  every incoming lane   {sum(lanes_n.values()):5} lanes {all_w:8.0f} {all_b:8.0f} "
        f"{all_w - all_b:+8.0f} ({pct(all_w, all_b)})"
    )
    # -- per mechanism (each span by what its controller did) -----------------------------------
    mech_w: dict[str, float] = defaultdict(float)
    mech_b: dict[str, float] = defaultdict(float)
    mech_n: dict[str, int] = defaultdict(int)
    mech_s: dict[str, float] = defaultdict(float)
    for tls_id, spans in arm.disturbed.items():
        measured = arm.cross_lanes.get(tls_id, [])
        for lo, hi, ext, cut, rids in episodes(live, tls_id, spans):
            what = MECHANISM[(ext, cut)]
            won = any(outcome.get(r) == "served" for r in rids)
            key = f"{what:16} {'served' if won else 'none served'}"
            one = [(lo, hi)]
            mech_w[key] += sum(live.total(tls_id, lane, one) for lane in measured)
            mech_b[key] += sum(base.total(tls_id, lane, one) for lane in measured)
            mech_n[key] += 1
            mech_s[key] += hi - lo
    print("\nby mechanism (spans by what the controller did in them): spans, span-s, with / "
          "without / added, share of the net added")  # fmt: skip
    for key in sorted(mech_n, key=lambda k: mech_b[k] - mech_w[k]):
        d = mech_w[key] - mech_b[key]
        share = f"{100 * d / added:+.0f}%" if added else "-"
        w, b = mech_w[key], mech_b[key]
        print(f"  {key:28} {mech_n[key]:4} {mech_s[key]:7.0f} {w:8.0f} {b:8.0f} {d:+7.0f} "
              f"({pct(w, b)}) {share}")  # fmt: skip
    # -- extension seconds, and those after an emergency vehicle had passed ----------------------
    ext_s = ext_after = cut_runs = 0
    for tls_id, seen in live.state.items():
        passed = [t for _vid, t in live.passes.get(tls_id, [])]
        starts = set()
        for t, (ext, cut, _rids, start) in seen.items():
            if cut:
                starts.add(start)
            if not ext:
                continue
            ext_s += 1
            if any(start <= p < t for p in passed):
                ext_after += 1
        cut_runs += len(starts)
    print(
        f"\ngreens held past their program end: {ext_s} light-s, of them after an emergency "
        f"vehicle had passed the light in the same green {ext_after}; greens cut short "
        f"{cut_runs}"
    )
    for _d, tls_id, *_ in rows[:2]:
        seen = live.state.get(tls_id, {})
        n_ext = sum(1 for s in seen.values() if s[0])
        rids = set().union(*(set(s[2]) for s in seen.values()))
        cuts = len({s[3] for s in seen.values() if s[1]})
        n_won = sum(1 for r in rids if outcome.get(r) == "served")
        phases = live.greens.get(tls_id, [])
        print(f"  {tls_id}: {n_ext} s extended, {cuts} cuts, {len(rids)} requests ({n_won} "
              f"served), {len(live.passes.get(tls_id, []))} passages; {len(phases)} phases, "
              f"{len(phases[0]) if phases else 0} links")  # fmt: skip
    # -- the vehicle itself --------------------------------------------------------------------
    near_w = near_b = 0
    outside = inside = 0
    for tls_id, spans in arm.disturbed.items():
        measured = arm.cross_lanes.get(tls_id, [])
        for probe, is_base in ((live, False), (base, True)):
            for _vid, t in probe.passes.get(tls_id, []):
                if not any(lo <= t < hi for lo, hi in spans):
                    if is_base:
                        outside += 1
                    continue
                if is_base:
                    inside += 1
                win = [(t - 10.0, t + 10.0)]
                n = sum(probe.total(tls_id, lane, win) for lane in measured)
                if is_base:
                    near_b += n
                else:
                    near_w += n
    print(f"\nthe emergency vehicles' own passages of the served lights: cross halts within 10 s "
          f"of a passage: with {near_w}, without {near_b}; baseline passages inside the spans "
          f"{inside}, outside {outside}")  # fmt: skip
    # -- the vehicle's time --------------------------------------------------------------------
    drill_w = {t.vehicle_id: t.travel_s for t in arm.trips}
    drill_b = {t.vehicle_id: t.travel_s for t in again.trips}
    both = sorted(v for v in drill_w if drill_w[v] is not None and drill_b.get(v) is not None)
    odd = sorted(set(drill_w) - set(both))
    print(f"\nemergency vehicles: {len(both)} arrived in both arms (the drill's figure); not in "
          f"both: " + (", ".join(f"{v} ({drill_w[v]} with, {drill_b.get(v)} without)"
                                for v in odd) or "none"))  # fmt: skip
    if not both:
        return

    def tot(d: dict[str, int]) -> int:
        return sum(d[v] for v in both)

    dur_b = sum(ev_base[v][0] for v in both)
    dur_w = sum(ev_live[v][0] for v in both)
    loss_b = sum(ev_base[v][1] for v in both)
    loss_w = sum(ev_live[v][1] for v in both)
    print(
        f"  tripinfo sums: duration {dur_b:.0f} -> {dur_w:.0f} s ({pct(dur_w, dur_b)}); timeLoss "
        f"{loss_b:.0f} -> {loss_w:.0f} s; waiting {sum(ev_base[v][2] for v in both):.0f} -> "
        f"{sum(ev_live[v][2] for v in both):.0f} s; departure delay "
        f"{sum(ev_base[v][3] for v in both):.0f} -> {sum(ev_live[v][3] for v in both):.0f} s"
    )
    print("  seconds standing    before a red  before a green (queued)  elsewhere  crawling at red")
    for name, p in (("baseline", base), ("green wave", live)):
        print(f"  {name:18} {tot(p.halted_red):13} {tot(p.halted_green):24} "
              f"{tot(p.halted_other):10} {tot(p.slow_red):16}")  # fmt: skip
    at_lights = tot(base.halted_red) + tot(base.halted_green) + tot(base.slow_red)
    print(
        f"  bound on any green wave's gain: the baseline's timeLoss is {100 * loss_b / dur_b:.0f}% "
        f"of its time; standing or crawling before lights {100 * at_lights / dur_b:.0f}% "
        f"({at_lights} s), of which before a red {100 * tot(base.halted_red) / dur_b:.0f}%"
    )
    per = [100 * (ev_live[v][0] - ev_base[v][0]) / ev_base[v][0] for v in both]
    print(
        f"  per vehicle change: median {statistics.median(per):+.1f}%, best {min(per):+.1f}%, "
        f"worst {max(per):+.1f}%"
    )


if __name__ == "__main__":
    main()
