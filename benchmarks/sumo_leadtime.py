"""Why green-wave grants are rejected in SUMO: how far ahead of the vehicle they reach a light,
against how long the light needs to give the vehicle's phase a safe green.

Runs one ``live`` arm of the SUMO drill (``simulators.sumo.drill.run_arm``) with every light
controller's ``receive`` watched (in this process only: the product path is not changed) and
prints, per grant as it reaches a light:

* ``lead``: seconds from its arrival at the light to the vehicle's ETA there;
* ``need``: seconds from then to the earliest green of the vehicle's phase that minimum greens
  and full clearances allow (``LightController.earliest_green``);
* ``worst``: the light's longest path to that phase (from the start of the clearance after it,
  through every other phase's minimum green and clearance), what a lead must cover to be safe
  whatever the light shows;

split by first grants and re-timed ones, with what the controller answered at once.

    .venv/bin/python benchmarks/sumo_leadtime.py [--demand moderate] [--seed 11]
        [--window-s 1800] [--vehicles 24] [--variant default]

Needs the 'sumo' extra and the shared Shanghai extract (../shared/data/osm).
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from dataclasses import dataclass

import _common  # noqa: F401  (puts the repository root first on sys.path)
from sumo_strategies import add_run_args, base_config, prepared, with_variant

from simulators.sumo import controller as ctl
from simulators.sumo.drill import Strategy


@dataclass(frozen=True, slots=True)
class Seen:
    request_id: str
    tls_id: str
    first: bool
    lead_s: float
    need_s: float
    worst_s: float
    answer: str  # "held", or the reason kind of an at-once rejection


def worst_path_s(program: ctl.Program, targets: frozenset[int]) -> float:
    """Longest time to a phase of ``targets``: from the end of its green, round the cycle."""
    phases = program.phases
    best = 0.0
    for start in range(len(phases)):
        if start in targets:
            continue
        total, k = 0.0, start
        for _ in range(len(phases)):
            if k in targets:
                break
            p = phases[k]
            total += p.duration_s if p.kind is ctl.PhaseKind.CLEARANCE else p.min_s
            k = program.next_index(k)
        best = max(best, total)
    return best


TRAIL: dict[str, list[str]] = {}  # request id -> what happened to it at its light, in order


def watch() -> list[Seen]:
    seen: list[Seen] = []
    receive = ctl.LightController.receive
    data_to_send = ctl.LightController.data_to_send

    def reports(self: ctl.LightController) -> list[ctl.Report]:
        out = data_to_send(self)
        for rep in out:
            TRAIL.setdefault(rep.request_id, []).append(
                f"{rep.at_s:.0f} {rep.status} {rep.kind.value if rep.kind else rep.reason}"
            )
        return out

    ctl.LightController.data_to_send = reports  # type: ignore[method-assign]

    def watched(self: ctl.LightController, message: ctl.Grant | ctl.Cancel, now_s: float) -> None:
        if isinstance(message, ctl.Grant):
            targets = self.program.serving(message.links)
            first = message.request_id not in self.held
            need = self.earliest_green(targets, now_s) - now_s if targets else float("inf")
            before = len(self._outbox)
            receive(self, message, now_s)
            answer = "held"
            for rep in self._outbox[before:]:
                if rep.request_id == message.request_id and rep.status == "rejected":
                    answer = rep.reason.split(" ")[0] + " " + rep.reason.split(" ")[1]
            TRAIL.setdefault(message.request_id, []).append(
                f"{now_s:.0f} grant {'new' if first else 'retimed'} "
                f"eta+{message.eta_s - now_s:.0f} "
                f"window {message.green_from_s - now_s:.0f}..{message.green_to_s - now_s:.0f} "
                f"need {need:.0f}: {answer}"
            )
            seen.append(
                Seen(
                    message.request_id,
                    self.program.tls_id,
                    first,
                    message.eta_s - now_s,
                    need,
                    worst_path_s(self.program, targets) if targets else float("inf"),
                    answer,
                )
            )
        else:
            TRAIL.setdefault(message.request_id, []).append(f"{now_s:.0f} cancel")
            receive(self, message, now_s)

    ctl.LightController.receive = watched  # type: ignore[method-assign]
    return seen


def q(xs: list[float]) -> str:
    xs = sorted(x for x in xs if x != float("inf"))
    if not xs:
        return "-"
    pick = [xs[int(p * (len(xs) - 1))] for p in (0.1, 0.5, 0.9)]
    mean = statistics.fmean(xs)
    return f"p10 {pick[0]:6.1f}  p50 {pick[1]:6.1f}  p90 {pick[2]:6.1f}  mean {mean:6.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_args(ap, demand="moderate", window_s=1800.0, vehicles=24)
    ap.add_argument("--variant", default="default")
    args = ap.parse_args()
    cfg = with_variant(base_config(args), args.variant)
    seen = watch()
    with prepared(args, cfg) as run:
        arm = run.arm(Strategy.LIVE, cfg, seed=args.seed)
    print(f"{len(run.trips)} vehicles; grants to lights {len(seen)}; served {arm.served}, "
          f"rejected {arm.rejected}: {arm.rejected_by_reason}")  # fmt: skip
    for label, rows in (
        ("first grants", [s for s in seen if s.first]),
        ("re-timed grants", [s for s in seen if not s.first]),
    ):
        print(f"\n{label}: {len(rows)}, answered at once: {dict(Counter(s.answer for s in rows))}")
        print(f"  lead  {q([s.lead_s for s in rows])}")
        print(f"  need  {q([s.need_s for s in rows])}")
        print(f"  worst {q([s.worst_s for s in rows])}")
        short = [s for s in rows if s.lead_s < s.worst_s]
        print(f"  lead < worst: {len(short)} ({100 * len(short) / max(len(rows), 1):.0f}%)")
    rejected = [s for s in seen if s.answer != "held"]
    ids = {s.request_id for s in rejected}
    print(f"\nat-once rejections {len(rejected)} of {len(ids)} requests "
          f"({len({s.request_id for s in seen})} requests reached a light)")  # fmt: skip
    late = [s for s in rejected if s.answer.startswith("earliest")]
    print(f"'no safe green': lead {q([s.lead_s for s in late])}")
    print(f"                 need {q([s.need_s for s in late])}")
    print(f"                 late by {q([s.need_s - s.lead_s for s in late])}")
    firsts = [s for s in late if s.first]
    print(f"  of them first grants {len(firsts)}, re-timed {len(late) - len(firsts)}")
    # Per request: the lead its first grant had, for those later rejected as too late.
    first_lead: dict[str, Seen] = {}
    for s in seen:
        first_lead.setdefault(s.request_id, s)
    late_ids = {s.request_id for s in late}
    print(
        "  very first grant of requests ever 'no safe green': lead "
        f"{q([first_lead[r].lead_s for r in late_ids])}, need "
        f"{q([first_lead[r].need_s for r in late_ids])}"
    )
    print(f"very first grant of every request: lead {q([x.lead_s for x in first_lead.values()])}")
    print(f"                                   need {q([x.need_s for x in first_lead.values()])}")
    print(f"                                  worst {q([x.worst_s for x in first_lead.values()])}")
    short = sum(1 for x in first_lead.values() if x.lead_s < x.worst_s)
    print(f"  lead < worst: {short} of {len(first_lead)}")
    worst_ids = Counter(s.request_id for s in rejected).most_common(3)
    for rid, n in worst_ids:
        trail = TRAIL.get(rid, [])
        # The story up to the first at-once rejection, and a little after.
        k = next(
            (i for i, x in enumerate(trail) if x.endswith(("earliest safe", "conflicts at"))), 0
        )
        print(f"\n{rid}: {n} at-once rejections; events {len(trail)}")
        for line in trail[max(0, k - 12) : k + 4]:
            print("   ", line)


if __name__ == "__main__":
    main()
