"""The drill report as one self-contained HTML page, plots drawn as inline SVG.

No plotting library: the two plots (arrival-time distributions with and without the green wave,
and delay saved per signal) are a few dozen SVG rectangles, which keeps the page small,
byte-identical for the same report and free of a matplotlib dependency in the service.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .report import DrillReport

_W, _H, _PAD = 640, 260, 40
_WITH, _WITHOUT = "#2a9d8f", "#e76f51"


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _histogram(with_s: Sequence[float], without_s: Sequence[float]) -> str:
    """Overlaid histograms of arrival times (minutes) with and without the green wave."""
    values = [*with_s, *without_s]
    if not values:
        return "<p>No green-wave responses.</p>"
    top = max(values) / 60.0
    bins = 20
    width = max(top / bins, 0.25)
    counts_w = [0] * bins
    counts_o = [0] * bins
    for v in with_s:
        counts_w[min(int(v / 60.0 / width), bins - 1)] += 1
    for v in without_s:
        counts_o[min(int(v / 60.0 / width), bins - 1)] += 1
    peak = max(*counts_w, *counts_o, 1)
    bw = (_W - 2 * _PAD) / bins
    parts = [f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img">']
    for k in range(bins):
        for counts, color, shift in ((counts_o, _WITHOUT, 0.0), (counts_w, _WITH, bw / 2)):
            h = (_H - 2 * _PAD) * counts[k] / peak
            x = _PAD + k * bw + shift
            parts.append(
                f'<rect x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{bw / 2 - 1:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{counts[k]}</title></rect>'
            )
    for k in range(0, bins + 1, 4):
        x = _PAD + k * bw
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _PAD + 16}" font-size="11" text-anchor="middle">'
            f"{k * width:.0f}</text>"
        )
    parts.append(
        f'<text x="{_W / 2}" y="{_H - 6}" font-size="12" text-anchor="middle">'
        "arrival (min, departure to on scene)</text>"
    )
    parts.append(
        f'<text x="{_PAD}" y="16" font-size="12" fill="{_WITH}">■ with green wave</text>'
        f'<text x="{_PAD + 150}" y="16" font-size="12" fill="{_WITHOUT}">■ without</text>'
    )
    parts.append(
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#333"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _saved_bars(saved: Sequence[tuple[int, float]]) -> str:
    """Delay saved per signal (seconds over all passes), the 30 largest."""
    if not saved:
        return "<p>No signals crossed.</p>"
    rows = sorted(saved, key=lambda s: (-s[1], s[0]))[:30]
    peak = max(max(abs(v) for _, v in rows), 1.0)
    row_h = 14
    height = row_h * len(rows) + 30
    left = 110
    parts = [f'<svg viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" role="img">']
    for k, (iid, value) in enumerate(rows):
        y = 10 + k * row_h
        w = (_W - left - 60) * abs(value) / peak
        color = _WITH if value >= 0 else _WITHOUT
        parts.append(
            f'<text x="{left - 6}" y="{y + 10}" font-size="10" text-anchor="end">{iid}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row_h - 3}" fill="{color}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + 10}" font-size="10">{value:.0f} s</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: DrillReport) -> str:
    """A self-contained HTML page for a drill report (no external assets).

    Args:
        report: the drill report.

    Returns:
        The page as a string (UTF-8 text; the same report renders the same bytes).
    """
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
    saved = [(sig.intersection_id, sig.saved_s) for sig in report.signals if sig.passes]
    headline = [
        ("calls", f"{s.calls}"),
        ("responses", f"{s.responses}"),
        ("whistles", f"{s.whistles}"),
        ("green-wave responses", f"{s.greenwave_responses}"),
        ("escalations to backup", f"{s.escalations}"),
        ("mean arrival with green wave", _fmt(s.mean_arrival_s_with, " s")),
        ("mean arrival without", _fmt(s.mean_arrival_s_without, " s")),
        ("change", _fmt(s.arrival_change_pct, " %")),
        (
            "responses improved",
            _fmt(None if s.improved_share is None else 100 * s.improved_share, " %"),
        ),
        ("navigation (planned) time, same legs", _fmt(s.mean_planned_s, " s")),
        ("transport with / without", f"{_fmt(s.mean_transport_s_with, ' s')} / "
         f"{_fmt(s.mean_transport_s_without, ' s')}"),
        ("call to whistle (mean)", _fmt(s.mean_call_to_whistle_s, " s")),
        ("whistle to ack (mean)", _fmt(s.mean_whistle_to_ack_s, " s")),
        ("requests granted / rejected", f"{s.requests_granted} / {s.requests_rejected}"),
        ("signal windows served", f"{s.signals_served}"),
        ("conflicting grants", f"{s.grant_conflicts}"),
        ("cross-street delay added", f"{_fmt(s.cross_delay_added_pct, ' %')} "
         f"({_fmt(s.cross_delay_added_veh_s / 3600.0, ' veh·h', 2)})"),
        ("units missing", f"{s.missing_units}"),
    ]  # fmt: skip
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in headline)
    rows = []
    for r in report.responses:
        if not r.whistle:
            continue
        acks = ", ".join(
            f"{a.agency.value} {a.tier}: "
            + ("no ack" if a.whistle_to_ack_s is None else f"{a.whistle_to_ack_s:.0f} s")
            for a in r.acks
        )
        rows.append(
            "<tr>"
            f"<td>{esc(r.incident_id)}</td><td>{esc(r.first_call_at.strftime('%H:%M:%S'))}</td>"
            f"<td>{esc(', '.join(t.value for t in r.call_types))}</td>"
            f"<td>{_fmt(r.call_to_whistle_s, ' s', 0)}</td><td>{esc(acks)}</td>"
            f"<td>{_fmt(r.arrival_s_with, ' s', 0)}</td>"
            f"<td>{_fmt(r.arrival_s_without, ' s', 0)}</td>"
            f"<td>{'yes' if r.improved else 'no' if r.improved is not None else '–'}</td>"
            "</tr>"
        )
    graph = report.graph
    title = f"Yishao drill {report.drill_id}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
th {{ font-weight: 600; }}
.small {{ color: #666; font-size: 13px; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{esc(report.description)}</p>
<p class="small">scenario {esc(report.scenario)} · seed {report.seed} · batch mode · start
{esc(report.start.isoformat())} · {report.duration_h:g} h · map {esc(str(graph.get("source")))}
({graph.get("nodes")} nodes, {graph.get("signals")} signals)</p>
<h2>Summary</h2><table>{table}</table>
<p class="small">Arrival: departure to on scene of each unit, averaged per response, over the
responses whose green wave was switched on; "without" is the same leg re-driven on the same route,
leaving at the same second, through the same fixed-time signals, with no priority. Cross-street
delay: extra queueing on the approaches crossing a served priority movement, over the cycles the
controller was off its plan, relative to their fixed-time uniform delay over those cycles.</p>
<h2>Arrival times</h2>{_histogram(with_s, without_s)}
<h2>Delay saved per signal</h2>
<p class="small">Signal time lost (waiting, braking, accelerating) without minus with the green
wave, summed over all passes; the 30 signals that gained most.</p>
{_saved_bars(saved)}
<h2>Whistle responses</h2>
<table><tr><th>incident</th><th>first call</th><th>call types</th><th>call → whistle</th>
<th>whistle → acks</th><th>arrival with</th><th>without</th><th>improved</th></tr>
{"".join(rows)}</table>
</body></html>
"""
