"""The drill with and without pivot posts: the same seed run twice, compared on the arrival of
the incidents of the types the standing posts cover.

Vocabulary: a plan's posts name the history's call types (``pivots`` history rows carry a
``call_type``; the synthetic history uses the service's :class:`~dispatch.models.CallType`
values, so the drill's incident call types map one to one). A post's type not a
``CallType`` value (an imported history may have its own words) is not mapped: it is listed
under ``unmapped_types`` and covers nothing in the drill.

An incident counts as covered when one of its call types is among the types of a post standing
at its first call (any post: a post's types are what its demand held). Its response time is
first call to the first police (or traffic-police) unit on scene, as the service runs (call
processing, ranking, green wave) in both runs: the units posts move are police units.
The two runs can merge calls into incidents differently
(closing times differ), so the figures compare the two sets of covered incidents, and the
paired figures use incidents whose first call (time and types) is the same in both runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from dispatch.core.assign import LegKind
from dispatch.core.pivot_plan import Plan, active_posts
from dispatch.models import Agency, CallType

from ..report import (
    ArrivalFigures,
    DrillReport,
    PivotComparison,
    PivotTypeFigures,
    ResponseRecord,
)

_KNOWN = {t.value for t in CallType}


def _figures(values: list[float]) -> ArrivalFigures:
    return ArrivalFigures(
        count=len(values),
        median_s=round(statistics.median(values), 3) if values else None,
        mean_s=round(statistics.fmean(values), 3) if values else None,
    )


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _covered(plan: Plan, r: ResponseRecord) -> set[str]:
    """The call types of ``r`` covered by a post standing at its first call."""
    types = {t for p in active_posts(plan, r.first_call_at) for ts in p.call_types
             for t in [ts.call_type]}  # fmt: skip
    return {t.value for t in r.call_types} & types


def police_response_s(report: DrillReport, r: ResponseRecord) -> float | None:
    """First call to the first police unit on scene (None: no police unit came)."""
    call_s = (r.first_call_at - report.start).total_seconds()
    arrivals = [
        leg.dispatched_s + leg.dispatch_to_arrival_s - call_s
        for leg in r.legs
        if leg.leg is LegKind.SCENE and leg.agency in (Agency.POLICE, Agency.TRAFFIC)
    ]
    return round(min(arrivals), 3) if arrivals else None


def _key(r: ResponseRecord) -> tuple[str, tuple[str, ...]]:
    return r.first_call_at.isoformat(), tuple(t.value for t in r.call_types)


def compare(
    plan: Plan,
    with_posts: DrillReport,
    without_posts: DrillReport,
    *,
    posts_standing_max: int,
    units_posted_max: int,
) -> PivotComparison:
    """The pivot figures of a paired drill (see the module docstring)."""
    all_types = {ts.call_type for b in plan.bands for p in b.posts for ts in p.call_types}
    standing_types: set[str] = set()
    for r in with_posts.responses:
        standing_types |= {
            ts.call_type for p in active_posts(plan, r.first_call_at) for ts in p.call_types
        }

    def covered(report: DrillReport) -> dict[tuple[str, tuple[str, ...]], tuple[set[str], float]]:
        out = {}
        for r in report.responses:
            types = _covered(plan, r)
            response = police_response_s(report, r)
            if types and response is not None:
                out[_key(r)] = (types, response)
        return out

    a, b = covered(with_posts), covered(without_posts)

    def figures(types: Iterable[str] | None) -> PivotTypeFigures:
        want = None if types is None else set(types)

        def pick(
            d: dict[tuple[str, tuple[str, ...]], tuple[set[str], float]],
        ) -> dict[tuple[str, tuple[str, ...]], float]:
            return {k: v for k, (ts, v) in d.items() if want is None or ts & want}

        pa, pb = pick(a), pick(b)
        fa, fb = _figures(list(pa.values())), _figures(list(pb.values()))
        both = sorted(set(pa) & set(pb))
        return PivotTypeFigures(
            with_posts=fa,
            without_posts=fb,
            paired=len(both),
            paired_mean_delta_s=round(statistics.fmean(pa[k] - pb[k] for k in both), 3)
            if both
            else None,
            median_delta_s=_delta(fa.median_s, fb.median_s),
            mean_delta_s=_delta(fa.mean_s, fb.mean_s),
        )

    seen = sorted({t for ts, _ in list(a.values()) + list(b.values()) for t in ts})
    return PivotComparison(
        plan_graph=plan.graph,
        plan_label=plan.history.label,
        posts_standing_max=posts_standing_max,
        units_posted_max=units_posted_max,
        covered_types=sorted(standing_types & _KNOWN),
        unmapped_types=sorted(all_types - _KNOWN),
        covered=len(a),
        overall=figures(None),
        by_type={t: figures([t]) for t in seen},
        summary_without={
            "responses": without_posts.summary.responses,
            "mean_arrival_s_with": without_posts.summary.mean_arrival_s_with,
        },
    )
