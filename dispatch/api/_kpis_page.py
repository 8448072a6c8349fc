"""The ``/kpis`` report page: the figures of ``/api/kpis`` as tables and matplotlib plots,
rendered on the server as one self-contained HTML page (inline SVG, no script)."""

from __future__ import annotations

import io
from html import escape
from typing import Any

from dispatch.core.intervals import INTERVALS

LABELS = {
    "call_processing_s": "call processing",
    "turnout_s": "turnout",
    "travel_s": "travel",
    "total_s": "total",
}


def _svg(fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    # The XML prolog and doctype are not wanted inline in HTML.
    return text[text.index("<svg") :]


def _plots(figs: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    plots: list[tuple[str, str]] = []
    agencies: dict[str, Any] = figs["agencies"]
    if agencies:
        fig = Figure(figsize=(7, 3.2))
        ax = fig.subplots()
        names = list(agencies)
        width = 0.8 / len(INTERVALS)
        for k, interval in enumerate(INTERVALS):
            xs = [i + k * width for i in range(len(names))]
            ax.bar(xs, [agencies[a][interval]["p90"] or 0 for a in names], width,
                   alpha=0.35, color=f"C{k}")  # fmt: skip
            ax.bar(xs, [agencies[a][interval]["median"] or 0 for a in names], width,
                   label=LABELS[interval], color=f"C{k}")  # fmt: skip
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
        ax.set_ylabel("seconds (median; pale: p90)")
        ax.legend(fontsize="small", ncols=4)
        plots.append(("Intervals by agency", _svg(fig)))
    months: list[dict[str, Any]] = figs["trend"]["month"]
    if months:
        fig = Figure(figsize=(7, 3.2))
        ax = fig.subplots()
        labels = [m["period"][:7] for m in months]
        ax.plot(labels, [m["median_total_s"] for m in months], marker="o", label="median total")
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        yoy = [m["median_total_yoy_pct"] for m in months]
        ax2.bar(labels, [0 if v is None else v for v in yoy], alpha=0.3, color="C3",
                label="vs a year before (%)")  # fmt: skip
        ax2.axhline(0, color="C3", linewidth=0.5)
        ax2.set_ylabel("% vs a year before")
        ax.tick_params(axis="x", labelrotation=45)
        fig.legend(fontsize="small", loc="upper left")
        plots.append(("Monthly median total response, and change year over year", _svg(fig)))
    return plots


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return escape(str(value))


def _programme(figs: dict[str, Any]) -> str:
    """The green-wave, property-team, referral and repeat-call figures as one table."""
    from dispatch.records.kpis import programme_rows

    body = []
    for section, _, name, n, median, p90, value in programme_rows(figs):
        label = name.removesuffix("_s").replace("_", " ")
        times = "" if median is None and p90 is None else f"{_cell(median)} / {_cell(p90)}"
        body.append(
            f"<tr><th>{escape(section.replace('_', ' '))}</th><th>{escape(label)}</th>"
            f"<td>{_cell(n)}</td><td>{times}</td><td>{_cell(value)}</td></tr>"
        )
    return (
        '<h2>Green wave, property teams, referrals, repeat calls</h2><table id="programme">'
        "<thead><tr><th>section</th><th>figure</th><th>count</th><th>median / p90 (s)</th>"
        f"<th>total (s) or share (%)</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def render(figs: dict[str, Any], *, title: str) -> str:
    """The page for one ``/api/kpis`` answer."""
    head = "".join(f"<th>{LABELS[i]} median / p90 (s)</th>" for i in INTERVALS)
    rows = []
    for agency, g in figs["agencies"].items():
        cells = "".join(
            f"<td>{_cell(g[i]['median'])} / {_cell(g[i]['p90'])}</td>" for i in INTERVALS
        )
        rows.append(f"<tr><th>{escape(agency)}</th><td>{g['incidents']}</td>{cells}</tr>")
    w = figs["whistles"]
    gw = figs["greenwave"]
    plots = "".join(f"<figure><figcaption>{escape(t)}</figcaption>{svg}</figure>"
                    for t, svg in _plots(figs))  # fmt: skip
    kind = "exercises (drills)" if figs["exercise"] else "real incidents"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{escape(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }}
figure {{ margin: 1rem 0; }} figcaption {{ font-weight: 600; }}
.summary span {{ margin-right: 1.5rem; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="summary"><span id="incidents">{figs["incidents"]} {kind}</span>
<span id="whistles">{w["count"]} whistles ({w["escalations"]} escalations; call to whistle
median {_cell(w["call_to_whistle_s"]["median"])} s, to all acked
{_cell(w["whistle_to_all_acked_s"]["median"])} s)</span>
<span id="greenwave">green wave on {gw["responses"]} responses, {gw["granted"]} of
{gw["requests"]} signal requests granted, median {_cell(gw["time_saved"]["median_s"])} s saved
against the planned ETA</span>
<span id="timezone">weeks and months in {escape(str(figs.get("timezone", "UTC")))} time</span></p>
<table id="agencies"><thead><tr><th>agency</th><th>incidents</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
{_programme(figs)}
{plots}
<p><a href="/api/kpis.csv">CSV</a> · NFPA 1225/1710: call processing = first call to first
unit assigned; turnout = assigned to en route; travel = en route to on scene. Green-wave
time saved = a protected unit's planned no-priority ETA (its first scene route) minus its
travel, per response its first protected unit on scene. A repeat call is a dispute call
linked to a referral (same type, within the referral's repeat window and distance).</p>
</body></html>"""
