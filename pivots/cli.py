"""``yishao pivots plan|backtest|show|demand``: pivot posts from incident history.

Mount with ``app.add_typer(pivots_app, name="pivots")``. Heavy imports (the planner, esda, h3)
happen inside the commands, so mounting costs nothing at start-up.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from routing import Router

    from .history import HistoryRecord
    from .plan import BandPlan, Plan, PlanParams

app = typer.Typer(
    help="Pivot points (支点): temporary posts where the incidents are, moved with the season.",
    no_args_is_help=True,
)
_err = Console(stderr=True, soft_wrap=True)


def _one_line(exc: Exception) -> str:
    """A file's problem in one line (a pydantic error's first complaint, not its essay)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where + ': ' if where else ''}{first['msg']}{more}"
    return " ".join(str(exc).split())


GraphOpt = Annotated[
    Path,
    typer.Option(
        "--graph", help="Cached graph (.npz) or OSM file (built and cached on first use)."
    ),
]
HistoryOpt = Annotated[
    Path | None, typer.Option("--history", help="Incident history (.csv or .json) to plan from.")
]
SyntheticOpt = Annotated[
    bool,
    typer.Option("--synthetic-history", help="Generate a seeded SYNTHETIC district history."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the synthetic history.")]
MonthsOpt = Annotated[
    int,
    typer.Option(
        "--history-months",
        help="Months of synthetic history (24: a warm-up year and a year to test).",
    ),
]
KeepGoodOpt = Annotated[
    bool,
    typer.Option(
        "--keep-good", help="Keep the good rows of a history file with refused rows (reported)."
    ),
]
CoverOpt = Annotated[
    float, typer.Option("--cover-s", help="A post covers what it reaches by road in this time.")
]
MinOpt = Annotated[int, typer.Option("--min-posts", help="Fewest posts in a band.")]
MaxOpt = Annotated[int, typer.Option("--max-posts", help="Most posts in a band.")]
TargetOpt = Annotated[
    float, typer.Option("--target", help="Share of calls in Gi* hot cells the posts must cover.")
]
OffsetOpt = Annotated[str, typer.Option("--utc-offset", help="Local time of the bands.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=code)


def _params(
    cover_s: float, min_posts: int, max_posts: int, target: float, offset: str
) -> PlanParams:
    from pydantic import ValidationError

    from .plan import PlanParams

    try:
        return PlanParams(
            cover_s=cover_s,
            min_posts=min_posts,
            max_posts=max_posts,
            target_share=target,
            utc_offset=offset,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(x) for x in first.get("loc", ())) or "parameters"
        raise _fail(f"{field}: {first.get('msg')}") from exc


def _router(graph: Path) -> Router:
    from routing import Router, RoutingError

    if not graph.exists():
        raise _fail(f"--graph: {graph} does not exist")
    try:
        with _err.status("loading graph"):
            return Router.from_file(graph)
    except (RoutingError, OSError) as exc:
        raise _fail(f"--graph: {exc}") from exc


def _history(
    router: Router,
    history: Path | None,
    synthetic: bool,
    seed: int,
    months: int,
    keep_good: bool,
) -> tuple[list[HistoryRecord], str | None]:
    """The records and the label to show with them (SYNTHETIC for generated history)."""
    from .history import HistoryImportError, load_history
    from .synthetic import SYNTHETIC_LABEL, generate_history

    if (history is None) == (not synthetic):
        raise _fail("give exactly one of --history FILE or --synthetic-history")
    if synthetic:
        if not 1 <= months <= 120:
            raise _fail("--history-months: between 1 and 120")
        with _err.status("generating synthetic history"):
            records = generate_history(router.graph, seed=seed, months=months)
        label = f"{SYNTHETIC_LABEL}, seed {seed}"
        _err.print(f"[yellow]{label}[/yellow]: {len(records):,} incidents over {months} months")
        return records, label
    assert history is not None
    try:
        records, report = load_history(history, keep_good=keep_good)
    except HistoryImportError as exc:
        _err.print(f"[red]error:[/red] {exc.args[0]}")
        if exc.report is not None:
            for e in exc.report.errors[:50]:
                _err.print(f"  {e}")
            if len(exc.report.errors) > 50:
                _err.print(f"  ... {len(exc.report.errors) - 50} more")
        raise typer.Exit(code=2) from exc
    _err.print(report.summary())
    for e in report.errors[:50]:
        _err.print(f"  refused {e}")
    if not report.synthetic:
        return records, None
    shown = f"{report.synthetic} of {report.accepted} records are SYNTHETIC"
    _err.print(f"[yellow]{shown}[/yellow]")
    return records, shown


@app.command()
def plan(
    graph: GraphOpt,
    history: HistoryOpt = None,
    synthetic_history: SyntheticOpt = False,
    seed: SeedOpt = 1,
    history_months: MonthsOpt = 12,
    keep_good: KeepGoodOpt = False,
    months: Annotated[
        str | None,
        typer.Option(
            "--months",
            help="Months to plan, FIRST..LAST (YYYY-MM); default: the twelve after the history.",
        ),
    ] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="The plan in force (JSON), for changes.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the plan JSON here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan JSON.")] = False,
    cover_s: CoverOpt = 60.0,
    min_posts: MinOpt = 13,
    max_posts: MaxOpt = 26,
    target: TargetOpt = 0.9,
    utc_offset: OffsetOpt = "+08:00",
) -> None:
    """Plan pivot posts for every band of the coming months from incident history."""
    from .bands import months_between
    from .plan import Plan
    from .planner import Planner

    params = _params(cover_s, min_posts, max_posts, target, utc_offset)
    month_keys: list[str] | None = None
    if months:
        first, _, last = months.partition("..")
        try:
            month_keys = months_between(first, last or first)
        except ValueError as exc:
            raise _fail(f"--months: {exc}") from exc
    prev = None
    if previous is not None:
        try:
            prev = Plan.model_validate_json(previous.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"--previous: {previous}: {_one_line(exc)}") from exc
    router = _router(graph)
    records, label = _history(router, history, synthetic_history, seed, history_months, keep_good)
    try:
        with _err.status("planning"):
            result = Planner(router, params).plan(records, month_keys, previous=prev, label=label)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    text = result.model_dump_json(indent=None)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        _err.print(f"wrote {out}")
    if as_json:
        typer.echo(text)
    else:
        _summary(result)


def _summary(result: Plan) -> None:
    console = Console()
    title = "Pivot posts per band" + (f" — {result.history.label}" if result.history.label else "")
    table = Table(title=title)
    table.add_column("month")
    starts = sorted({(b.day_kind.value, b.hours) for b in result.bands})
    for kind, hours in starts:
        table.add_column(f"{kind}\n{hours}", justify="right")
    for m in result.months:
        cells = []
        for kind, hours in starts:
            band = next(
                (
                    b
                    for b in result.bands
                    if b.month == m and b.day_kind.value == kind and b.hours == hours
                ),
                None,
            )
            cells.append(
                "" if band is None else f"{band.post_count}" + ("" if band.target_met else "!")
            )
        table.add_row(m, *cells)
    console.print(table)
    console.print("! = coverage target not met at the maximum number of posts")


@app.command()
def backtest(
    graph: GraphOpt,
    history: HistoryOpt = None,
    synthetic_history: SyntheticOpt = False,
    seed: SeedOpt = 1,
    history_months: MonthsOpt = 24,
    keep_good: KeepGoodOpt = False,
    min_train_months: Annotated[
        int, typer.Option("--min-train-months", help="History needed before a tested month.")
    ] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    cover_s: CoverOpt = 60.0,
    min_posts: MinOpt = 13,
    max_posts: MaxOpt = 26,
    target: TargetOpt = 0.9,
    utc_offset: OffsetOpt = "+08:00",
) -> None:
    """Train on past months, test on the next, against static and last-year baselines."""
    from .backtest import backtest as run_backtest
    from .planner import Planner

    params = _params(cover_s, min_posts, max_posts, target, utc_offset)
    if min_train_months < 1:
        raise _fail("--min-train-months: at least 1")
    router = _router(graph)
    records, label = _history(router, history, synthetic_history, seed, history_months, keep_good)
    try:
        with _err.status("back-testing"):
            result = run_backtest(
                Planner(router, params), records, min_train_months=min_train_months, label=label
            )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(result.model_dump_json())
        return
    console = Console()
    table = Table(title="Back-test" + (f" — {label}" if label else ""))
    for col in ("strategy", "covered share", "hit rate", "PAI", "mean posts", "months"):
        table.add_column(col, justify="right")
    for name, score in (
        ("planner", result.planner),
        ("static", result.static),
        ("last year", result.last_year),
    ):
        if score is not None:
            table.add_row(
                name,
                f"{score.covered_share:.3f}",
                f"{score.hit_rate:.3f}",
                f"{score.pai:.2f}",
                f"{score.mean_posts:.1f}",
                str(score.months),
            )
    console.print(table)
    console.print(
        "posts at the busiest band: "
        + ", ".join(f"{m} {n}" for m, n in result.posts_by_month.items())
    )
    console.print(f"planner beats static: {'yes' if result.planner_beats_static else 'NO'}")


def _band_table(band: BandPlan, label: str | None) -> Table:
    title = (
        f"{band.month} {band.day_kind.value} {band.hours}: {band.post_count} posts, "
        f"{band.covered_share:.0%} of {band.expected_calls:.0f} expected calls covered"
        + (f" — {label}" if label else "")
    )
    table = Table(title=title)
    for col in ("#", "post", "lat,lon", "calls (95 %)", "gain", "types", "change", "why"):
        table.add_column(col)
    for p in band.posts:
        types = ", ".join(f"{t.call_type} {t.share:.0%}" for t in p.call_types[:3])
        table.add_row(
            str(p.rank),
            str(p.node_id),
            f"{p.lat:.5f},{p.lon:.5f}",
            f"{p.expected_calls:.1f} ({p.expected_calls_low:.1f}-{p.expected_calls_high:.1f})",
            f"{p.marginal_calls:.1f}",
            types,
            p.change.value,
            p.reason,
        )
    for r in band.retired:
        table.add_row(
            "-",
            str(r.node_id),
            f"{r.lat:.5f},{r.lon:.5f}",
            f"{r.expected_calls_now:.1f}",
            "",
            "",
            "retired",
            r.reason,
        )
    return table


@app.command()
def show(
    plan_file: Annotated[Path, typer.Argument(help="A plan written by `pivots plan --out`.")],
    month: Annotated[str | None, typer.Option("--month", help="Only this month (YYYY-MM).")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Only the posts standing at this time (ISO 8601 with offset)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a plan's post tables (one per band), or the posts standing at a time."""
    from .plan import Plan, active_band

    try:
        loaded = Plan.model_validate_json(plan_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"{plan_file}: {_one_line(exc)}") from exc
    label = loaded.history.label
    if label:
        _err.print(f"[yellow]{label}[/yellow]")
    bands = loaded.bands
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
            band = active_band(loaded, when)
        except ValueError as exc:
            raise _fail(f"--at: {exc}") from exc
        bands = [band] if band else []
        if not bands:
            _err.print(f"the plan does not cover {at} (months {', '.join(loaded.months)})")
    elif month is not None:
        bands = [b for b in bands if b.month == month]
        if not bands:
            raise _fail(f"--month: {month} is not in the plan ({', '.join(loaded.months)})")
    if as_json:
        typer.echo(json.dumps([b.model_dump(mode="json") for b in bands], ensure_ascii=False))
        return
    console = Console()
    for b in bands:
        console.print(_band_table(b, label))


@app.command()
def demand(
    graph: GraphOpt,
    history: HistoryOpt = None,
    synthetic_history: SyntheticOpt = False,
    seed: SeedOpt = 1,
    history_months: MonthsOpt = 12,
    keep_good: KeepGoodOpt = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write CSV here (else stdout).")] = None,
    utc_offset: OffsetOpt = "+08:00",
) -> None:
    """Counts by H3 cell, month, day kind, hour band and type, with 95 % Garwood intervals."""
    import csv

    from .bands import parse_offset
    from .demand import demand_table
    from .frame import build_frame
    from .grid import Grid
    from .plan import PlanParams

    params = PlanParams(utc_offset=utc_offset)
    router = _router(graph)
    records, label = _history(router, history, synthetic_history, seed, history_months, keep_good)
    grid = Grid(router.graph, resolution=params.resolution)
    frame = build_frame(records, grid, tz=parse_offset(utc_offset), bands=params.bands)
    rows = demand_table(frame, grid, bands=params.bands)
    fh = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        if label:
            fh.write(f"# {label}\n")
        writer = csv.writer(fh)
        writer.writerow(["cell", "month", "day_kind", "hours", "call_type", "count", "low", "high"])
        for r in rows:
            writer.writerow(
                [r.cell, r.month, r.day_kind.value, r.hours, r.call_type, r.count, r.low, r.high]
            )
    finally:
        if out:
            fh.close()
    if frame.outside:
        _err.print(f"{frame.outside} records lie more than 500 m from every road: not counted")
    if out:
        _err.print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    app()
