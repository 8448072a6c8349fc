"""The drill report as one self-contained HTML page, plots drawn as inline SVG.

No plotting library: the plots (arrival-time distributions with and without the green wave,
and delay saved per signal) are a few dozen SVG rectangles, which keeps the page small,
byte-identical for the same report and free of a matplotlib dependency in the service.

Signals are named by the roads that meet there (``世纪大道 × 东方路``) when the caller passes
:func:`signal_names` of the map; the report itself keeps OSM ids only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from routing import RoadGraph

from .report import DrillReport, PivotTypeFigures, SignalRecord

_W, _H = 900, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 40, 48
_WITH, _WITHOUT = "#2a9d8f", "#e76f51"
_AXIS, _GRID, _MUTED = "#333", "#e4e4e4", "#666"
# Road classes by importance, to name a crossing after its main road first.
_RANK = {
    "motorway": 7, "trunk": 6, "primary": 5, "secondary": 4, "tertiary": 3,
    "motorway_link": 3, "trunk_link": 3, "primary_link": 3, "secondary_link": 2,
    "tertiary_link": 2,
}  # fmt: skip


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _secs(value: float | None) -> str:
    """Seconds with minutes beside them, for durations an analyst reads in minutes."""
    if value is None:
        return "–"
    return f"{value:,.1f} s ({value / 60.0:.1f} min)"


def _nice_step(span: float, max_ticks: int) -> float:
    """A 1-2-5 step giving at most ``max_ticks`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max_ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)


def signal_names(graph: RoadGraph, intersection_ids: Iterable[int]) -> dict[int, str]:
    """Name signals after the roads meeting there, main road first (``A × B``).

    Args:
        graph: the drill's map.
        intersection_ids: OSM node ids of signals.

    Returns:
        OSM id -> name, for the ids whose roads have names (others are left out).
    """
    wanted = {int(i) for i in intersection_ids}
    if not wanted:
        return {}
    osmid = graph.node_osmid
    index = {int(o): k for k, o in enumerate(osmid.tolist()) if int(o) in wanted}
    nodes = np.fromiter(index.values(), dtype=np.int64)
    at_node = np.isin(graph.edge_u, nodes) | np.isin(graph.edge_v, nodes)
    roads: dict[int, dict[str, int]] = {}
    highway = [str(h) for h in graph.highway_names.tolist()]
    for e in np.flatnonzero(at_node).tolist():
        name = str(graph.edge_name[e]).strip()
        if not name:
            continue
        rank = _RANK.get(highway[int(graph.edge_highway[e])], 1)
        for end in (int(graph.edge_u[e]), int(graph.edge_v[e])):
            best = roads.setdefault(end, {})
            best[name] = max(best.get(name, 0), rank)
    out: dict[int, str] = {}
    for oid, k in index.items():
        names = roads.get(k)
        if names:
            ordered = sorted(names, key=lambda n: (-names[n], n))
            out[oid] = " × ".join(ordered[:2])
    return out


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> str:
    parts = []
    for color, label in items:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>'
            f'<text x="{x + 17:.1f}" y="{y}" font-size="12">{html.escape(label)}</text>'
        )
        x += 17 + 7.2 * len(label) + 24
    return "".join(parts)


def _histogram(with_s: Sequence[float], without_s: Sequence[float]) -> str:
    """Side-by-side histograms of arrival times (minutes) with and without the green wave."""
    values = [*with_s, *without_s]
    if not values:
        return "<p>No green-wave responses.</p>"
    top = max(values) / 60.0
    width = next((w for w in (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0) if top / w <= 30), 60.0)
    bins = int(top // width) + 1
    counts_w = [0] * bins
    counts_o = [0] * bins
    for v in with_s:
        counts_w[min(int(v / 60.0 / width), bins - 1)] += 1
    for v in without_s:
        counts_o[min(int(v / 60.0 / width), bins - 1)] += 1
    peak = max(*counts_w, *counts_o, 1)
    y_step = max(1.0, _nice_step(peak, 5))
    y_top = math.ceil(peak / y_step) * y_step
    plot_w = _W - _LEFT - _RIGHT
    plot_h = _H - _TOP - _BOTTOM
    base = _TOP + plot_h
    bw = plot_w / bins
    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        'aria-label="Histogram of arrival times with and without the green wave">'
    ]
    k = 0.0
    while k <= y_top + 1e-9:
        y = base - plot_h * k / y_top
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" stroke="{_GRID}"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{k:.0f}</text>"
        )
        k += y_step
    for i in range(bins):
        for counts, color, shift, label in (
            (counts_w, _WITH, 0.0, "with green wave"),
            (counts_o, _WITHOUT, bw / 2, "without"),
        ):
            h = plot_h * counts[i] / y_top
            x = _LEFT + i * bw + shift + 0.5
            lo, hi = i * width, (i + 1) * width
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(bw / 2 - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{label}: {counts[i]} responses, '
                f"{lo:g}–{hi:g} min</title></rect>"
            )
    label_every = max(1, math.ceil(bins / 15))
    for i in range(0, bins + 1, label_every):
        x = _LEFT + i * bw
        parts.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="{_AXIS}"/>'
            f'<text x="{x:.1f}" y="{base + 17}" font-size="11" text-anchor="middle">'
            f"{i * width:g}</text>"
        )
    parts.append(
        f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" stroke="{_AXIS}"/>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="{_AXIS}"/>'
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_H - 8}" font-size="12" text-anchor="middle">'
        f"arrival time, minutes from departure to on scene (bins of {width:g} min)</text>"
        f'<text transform="translate(14 {_TOP + plot_h / 2:.1f}) rotate(-90)" font-size="12" '
        'text-anchor="middle">responses</text>'
    )
    mean_w = sum(with_s) / len(with_s) / 60.0 if with_s else None
    mean_o = sum(without_s) / len(without_s) / 60.0 if without_s else None
    parts.append(
        _legend(
            _LEFT,
            18,
            [
                (_WITH, f"with green wave (mean {_fmt(mean_w, ' min')})"),
                (_WITHOUT, f"without, same legs re-driven (mean {_fmt(mean_o, ' min')})"),
            ],
        )
    )
    parts.append("</svg>")
    return "".join(parts)


def _saved_bars(rows: Sequence[SignalRecord], names: Mapping[int, str]) -> str:
    """Delay saved per signal (seconds over all passes), the 30 largest."""
    if not rows:
        return "<p>No signals crossed.</p>"
    top = sorted(rows, key=lambda s: (-s.saved_s, s.intersection_id))[:30]
    peak = max(max(abs(s.saved_s) for s in top), 1.0)
    row_h = 18
    left = 270
    right = 150
    head = 26
    height = head + row_h * len(top) + 40
    plot_w = _W - left - right
    step = _nice_step(peak, 6)
    parts = [
        f'<svg viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" role="img" '
        'aria-label="Signal time saved per intersection">'
    ]
    bottom = head + row_h * len(top)
    k = 0.0
    while k <= peak + 1e-9:
        x = left + plot_w * k / peak
        parts.append(
            f'<line x1="{x:.1f}" y1="{head - 4}" x2="{x:.1f}" y2="{bottom}" stroke="{_GRID}"/>'
            f'<text x="{x:.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle">'
            f"{k:,.0f}</text>"
        )
        k += step
    parts.append(
        f'<text x="{left - 8}" y="{head - 10}" font-size="11" text-anchor="end" '
        f'fill="{_MUTED}">intersection (OSM node id)</text>'
        f'<text x="{left + plot_w + 8}" y="{head - 10}" font-size="11" '
        f'fill="{_MUTED}">saved · passes</text>'
    )
    for k_row, sig in enumerate(top):
        y = head + k_row * row_h
        w = plot_w * abs(sig.saved_s) / peak
        color = _WITH if sig.saved_s >= 0 else _WITHOUT
        name = names.get(sig.intersection_id)
        full = f"{name} (OSM {sig.intersection_id})" if name else f"OSM {sig.intersection_id}"
        label = (
            f'<tspan lang="zh-Hans">{html.escape(_short(name, 16))}</tspan>'
            f'<tspan fill="{_MUTED}" font-size="10"> {sig.intersection_id}</tspan>'
            if name
            else f"node {sig.intersection_id}"
        )
        parts.append(
            f"<g><title>{html.escape(full)}: {sig.saved_s:,.0f} s saved over {sig.passes} "
            f"passes ({sig.lost_s_without:,.0f} s lost without, {sig.lost_s_with:,.0f} s "
            f"with)</title>"
            f'<text x="{left - 8}" y="{y + 12}" font-size="12" text-anchor="end">{label}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" fill="{color}"/>'
            f'<text x="{left + plot_w + 8}" y="{y + 12}" font-size="11">'
            f"{sig.saved_s:,.0f} s · {sig.passes}</text></g>"
        )
    parts.append(
        f'<line x1="{left}" y1="{head - 4}" x2="{left}" y2="{bottom}" stroke="{_AXIS}"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{bottom + 33}" font-size="12" '
        'text-anchor="middle">signal time saved, seconds (without minus with, all passes)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _cross_table(signals: Sequence[SignalRecord], names: Mapping[int, str]) -> str:
    rows = sorted(
        (s for s in signals if s.cross_delay_added_veh_s > 0),
        key=lambda s: (-s.cross_delay_added_veh_s, s.intersection_id),
    )[:10]
    if not rows:
        return "<p>No signal added delay to cross traffic.</p>"
    out = []
    for s in rows:
        name = names.get(s.intersection_id)
        where = (
            f'<span lang="zh-Hans">{html.escape(name)}</span> '
            f'<span class="small">{s.intersection_id}</span>'
            if name
            else f"node {s.intersection_id}"
        )
        share = (
            f"{100.0 * s.cross_delay_added_veh_s / s.cross_baseline_veh_s:,.0f} %"
            if s.cross_baseline_veh_s > 0
            else "–"
        )
        out.append(
            f'<tr><td class="where">{where}</td><td class=num>{s.served}</td>'
            f"<td class=num>{s.extra_red_s_cross:,}</td>"
            f"<td class=num>{s.cross_delay_added_veh_s / 60.0:,.1f}</td>"
            f"<td class=num>{s.cross_baseline_veh_s / 60.0:,.1f}</td>"
            f"<td class=num>{share}</td></tr>"
        )
    return (
        "<table><tr><th>intersection</th><th class=num>priority windows served</th>"
        "<th class=num>extra red on cross street (s)</th><th class=num>delay added (veh·min)</th>"
        "<th class=num>usual delay, same cycles (veh·min)</th>"
        "<th class=num>added, % of usual</th></tr>" + "".join(out) + "</table>"
    )


def _pivots_section(report: DrillReport) -> str:
    """With pivot posts: the covered types' response times with and without posts."""
    pv = report.pivots
    if pv is None:
        return ""
    esc = html.escape

    def row(name: str, f: PivotTypeFigures) -> str:
        a, b = f.with_posts, f.without_posts
        return (
            f"<tr><td>{esc(name)}</td><td>{a.count} / {b.count}</td>"
            f"<td>{_fmt(a.median_s, ' s')} / {_fmt(b.median_s, ' s')}</td>"
            f"<td>{_fmt(f.median_delta_s, ' s')}</td>"
            f"<td>{_fmt(a.mean_s, ' s')} / {_fmt(b.mean_s, ' s')}</td>"
            f"<td>{_fmt(f.mean_delta_s, ' s')}</td>"
            f"<td>{f.paired}</td><td>{_fmt(f.paired_mean_delta_s, ' s')}</td></tr>"
        )

    rows = row("all covered types", pv.overall) + "".join(
        row(t, f) for t, f in sorted(pv.by_type.items())
    )
    label = f" ({esc(pv.plan_label)})" if pv.plan_label else ""
    unmapped = (
        f" Post types with no drill call type (not counted): {esc(', '.join(pv.unmapped_types))}."
        if pv.unmapped_types
        else ""
    )
    return f"""<h2>Pivot posts: with and without</h2>
<p class="small">The same seed run twice: with police units standing at the plan's posts{label}
(at most {pv.posts_standing_max} posts standing, {pv.units_posted_max} units posted at once)
and without posts. Response time: first call to the first police unit on scene, for the
incidents whose call type a standing post covers ({pv.covered} covered with posts).{unmapped}</p>
<table><tr><th>call type</th><th>incidents with / without</th><th>median with / without</th>
<th>median change</th><th>mean with / without</th><th>mean change</th><th>paired</th>
<th>paired mean change</th></tr>{rows}</table>"""


def render_html(report: DrillReport, *, signal_names: Mapping[int, str] | None = None) -> str:
    """A self-contained HTML page for a drill report (no external assets).

    Args:
        report: the drill report.
        signal_names: display names of signals by OSM id (:func:`signal_names` of the map);
            without it signals are shown by id.

    Returns:
        The page as a string (UTF-8 text; the same report renders the same bytes).
    """
    names = signal_names or {}
    s = report.summary
    esc = html.escape
    with_s = [
        r.arrival_s_with
        for r in report.responses
        if r.improved is not None and r.arrival_s_with is not None
    ]
    without_s = [
        r.arrival_s_without
        for r in report.responses
        if r.improved is not None and r.arrival_s_without is not None
    ]
    crossed = [sig for sig in report.signals if sig.passes]
    offset = report.start.utcoffset()
    tz = "local"
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        tz = f"UTC{'+' if minutes >= 0 else '−'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    headline = [
        ("calls", f"{s.calls}"),
        ("responses (incidents after merging calls)", f"{s.responses}"),
        ("whistles sounded", f"{s.whistles}"),
        ("green-wave responses (compared below)", f"{s.greenwave_responses}"),
        ("escalations to backup coordinator", f"{s.escalations}"),
        ("mean arrival time, with green wave", _secs(s.mean_arrival_s_with)),
        ("mean arrival time, without", _secs(s.mean_arrival_s_without)),
        ("arrival time change (negative = faster)", _fmt(s.arrival_change_pct, " %")),
        (
            "responses at least 0.5 s faster",
            _fmt(None if s.improved_share is None else 100 * s.improved_share, " %"),
        ),
        ("router's navigation time, same legs", _secs(s.mean_planned_s)),
        ("hospital transport, with / without", f"{_fmt(s.mean_transport_s_with, ' s')} / "
         f"{_fmt(s.mean_transport_s_without, ' s')}"),
        ("first call to whistle (mean)", _fmt(s.mean_call_to_whistle_s, " s")),
        ("whistle to coordinator ack (mean)", _fmt(s.mean_whistle_to_ack_s, " s")),
        ("signal priority requests granted / rejected",
         f"{s.requests_granted:,} / {s.requests_rejected:,}"),
        ("priority windows served by controllers", f"{s.signals_served:,}"),
        ("conflicting grants (must be 0)", f"{s.grant_conflicts}"),
        ("cross-street delay added (modelled, see below)",
         f"{_fmt(s.cross_delay_added_pct, ' %')} "
         f"({_fmt(s.cross_delay_added_veh_s / 3600.0, ' veh·h', 2)})"),
        ("needed units not available", f"{s.missing_units}"),
    ]  # fmt: skip
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in headline)
    rows = []
    for r in report.responses:
        if not r.whistle:
            continue
        acks = "<br>".join(
            esc(
                f"{a.agency.value} {a.tier}: "
                + ("no ack" if a.whistle_to_ack_s is None else f"{a.whistle_to_ack_s:.0f} s")
            )
            for a in r.acks
        )
        saved = (
            r.arrival_s_without - r.arrival_s_with
            if r.arrival_s_with is not None and r.arrival_s_without is not None
            else None
        )
        rows.append(
            "<tr>"
            f"<td>{esc(r.incident_id)}</td><td>{esc(r.first_call_at.strftime('%H:%M:%S'))}</td>"
            f"<td>{esc(', '.join(t.value.replace('_', ' ') for t in r.call_types))}</td>"
            f"<td class=num>{_fmt(r.call_to_whistle_s, ' s', 0)}</td>"
            f'<td class="acks">{acks}</td>'
            f"<td class=num>{_fmt(r.arrival_s_with, ' s', 0)}</td>"
            f"<td class=num>{_fmt(r.arrival_s_without, ' s', 0)}</td>"
            f"<td class=num>{_fmt(saved, ' s', 0)}</td>"
            f"<td>{'yes' if r.improved else 'no' if r.improved is not None else '–'}</td>"
            "</tr>"
        )
    graph = report.graph
    title = f"Yishao drill {report.drill_id}"
    start = report.start.strftime("%Y-%m-%d %H:%M") + f" {tz}"
    mode_text = (
        "live mode (real time against the service)"
        if report.mode == "live"
        else "batch mode (simulated clock)"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
  "WenQuanYi Micro Hei", sans-serif; margin: 2em; color: #222; max-width: 960px; }}
svg {{ font-family: inherit; max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left;
  vertical-align: top; }}
th {{ font-weight: 600; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
th.num {{ text-align: right; }}
td.acks, td.where {{ font-size: 13px; white-space: nowrap; }}
.small {{ color: #666; font-size: 13px; }}
.note {{ background: #f6f6f6; border-left: 3px solid #bbb; padding: 0.6em 1em; font-size: 14px; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{esc(report.description)}</p>
<p class="small">scenario {esc(report.scenario)} · seed {report.seed} · {esc(mode_text)} ·
start {esc(start)} · {report.duration_h:g} h · map {esc(str(graph.get("source")))}
({graph.get("nodes"):,} nodes, {graph.get("signals"):,} signals)</p>
<h2>Summary</h2><table>{table}</table>
<p class="small">Arrival time: from the unit leaving (after turnout) to on scene, averaged over
the units of a response, over the responses whose green wave was switched on. "Without" is the
same leg re-driven on the same route, leaving at the same second, through the same fixed-time
signals, with no priority requests. Times of day are {esc(tz)}.</p>
{_pivots_section(report)}
<h2>Arrival times</h2>
<p class="small">{len(with_s)} green-wave responses; each counted once in each colour.</p>
{_histogram(with_s, without_s)}
<h2>Delay saved per signal</h2>
<p class="small">Signal time lost (waiting, braking, accelerating) without minus with the green
wave, summed over all passes of drill vehicles; the 30 signals that gained most. Hover a bar for
the figures.</p>
{_saved_bars(crossed, names)}
<h2>Cost to cross traffic</h2>
<div class="note">
<p><b>What the {_fmt(s.cross_delay_added_pct, " %")} means.</b> During the signal cycles that
priority disturbed, drivers on the cross streets of the served signals queued that much longer
than the same cycles would have made them queue under the normal fixed-time plan. It is not a
share of the whole city's daily delay: undisturbed cycles and signals without priority are not
in it. In absolute terms the drill added {_fmt(s.cross_delay_added_veh_s / 3600.0, "", 2)}
vehicle-hours of waiting.</p>
<p><b>How it is modelled.</b> Every signal runs a two-phase fixed-time plan (cycle 60–150 s,
amber + all-red 5 s, minimum green 10 s; green is never cut below the minimum nor a clearance
shortened). Each approach is a fluid queue: vehicles arrive at the approach's flow (50–85 % of
capacity at the peak, scaled by the hour of day) and leave at one vehicle per 2 s while green.
From the first second a priority hold or early green takes the controller off its plan until
its phases and queues are back on it, the queues are integrated twice with the same arrivals:
as the signal ran, and as the plan would have run. The difference on the approaches not given
priority is the delay added (vehicle-seconds). The percentage divides the sum by those
approaches' fixed-time uniform delay <i>q·r²/(2(1−q/s))</i> per cycle times the whole cycles
each disturbance spans. Where two vehicles took both directions at one signal, only added
delay counts.</p>
<p><b>Limits.</b> Simulated traffic, not detector data: no turning movements, spill-back between
signals or pedestrians; flows are seeded per signal, not measured.</p>
</div>
<p class="small">The ten signals that added most delay to cross traffic:</p>
{_cross_table(report.signals, names)}
<h2>Whistle responses</h2>
<table><tr><th>incident</th><th>first call ({esc(tz)})</th><th>call types</th>
<th class=num>call → whistle</th><th>whistle → ack, per coordinator</th>
<th class=num>arrival with</th><th class=num>without</th><th class=num>saved</th>
<th>improved</th></tr>
{"".join(rows)}</table>
</body></html>
"""
