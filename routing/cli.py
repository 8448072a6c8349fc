"""Command line: ``yishao graph build|info`` and ``yishao route``.

Mount into the main app with ``app.add_typer(graph_app, name="graph")`` and
``app.command("route")(route)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .errors import RoutingError

# The graph, router and build modules load numpy, scipy and osmnx: each command imports what
# it uses, so ``yishao --help`` does not pay for them.

graph_app = typer.Typer(help="Build and inspect routing graphs.", no_args_is_help=True)
_err = Console(stderr=True, soft_wrap=True)


def _parse_point(text: str) -> tuple[float, float]:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError as exc:
        raise typer.BadParameter(f"expected LAT,LON, got {text!r}") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise typer.BadParameter(f"{text!r} is not a valid LAT,LON")
    return lat, lon


@graph_app.command("build")
def build(
    out: Annotated[
        Path, typer.Option("--out", help="Cache file to write (.npz is appended if missing).")
    ],
    osm: Annotated[
        Path | None, typer.Option("--osm", help="OSM file to build from: .osm (XML) or .osm.pbf.")
    ] = None,
    place: Annotated[
        str | None,
        typer.Option(
            "--place",
            help="Place to download (needs internet), e.g. "
            '"Fuyang District, Hangzhou, Zhejiang, China".',
        ),
    ] = None,
) -> None:
    """Build a routing graph from an OSM file or a place name and cache it for fast loading."""
    if (osm is None) == (place is None):
        raise typer.BadParameter("give exactly one of --osm FILE or --place NAME")
    from . import graph as graph_mod
    from .build import build_graph, build_graph_place

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=_err
    ) as bar:
        task = bar.add_task("starting", total=None)

        def step(label: str) -> None:
            bar.update(task, description=label)

        try:
            graph = (
                build_graph(osm, progress=step)
                if osm is not None
                else build_graph_place(str(place), progress=step)
            )
            step(f"writing {out}")
            written = graph_mod.save(graph, out)
        except RoutingError as exc:
            _err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=1) from exc
    _err.print(
        f"wrote {written}: {graph.node_count:,} nodes, {graph.edge_count:,} edges, "
        f"{graph.signal_count:,} signals"
    )


@graph_app.command("info")
def info(
    graph_file: Annotated[Path, typer.Argument(help="Cached graph (.npz).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Print node, edge and signal counts of a cached graph."""
    from . import graph as graph_mod

    try:
        graph = graph_mod.load(graph_file)
    except RoutingError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    facts = {
        "nodes": graph.node_count,
        "edges": graph.edge_count,
        "signals": graph.signal_count,
        "source": graph.meta.get("source"),
        "format_version": graph.meta.get("format_version"),
    }
    if as_json:
        typer.echo(json.dumps(facts))
    else:
        for key, value in facts.items():
            typer.echo(f"{key}: {value}")


def route(
    graph: Annotated[
        Path,
        typer.Option(
            "--graph", help="Cached graph (.npz) or OSM file (built and cached on first use)."
        ),
    ],
    origin: Annotated[str, typer.Option("--from", help="Start point as LAT,LON.")],
    destination: Annotated[str, typer.Option("--to", help="End point as LAT,LON.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole route as JSON.")] = False,
    normal: Annotated[
        bool,
        typer.Option(
            "--normal", help="Use normal-traffic speeds instead of the emergency profile."
        ),
    ] = False,
    max_snap_m: Annotated[
        float, typer.Option("--max-snap-m", help="Refuse points farther than this from a road.")
    ] = 500.0,
) -> None:
    """Compute the fastest route between two points and print it (JSON with --json)."""
    from .profile import EMERGENCY, NORMAL
    from .router import Router

    start, end = _parse_point(origin), _parse_point(destination)
    try:
        with _err.status("loading graph"):
            router = Router.from_file(
                graph, profile=NORMAL if normal else EMERGENCY, max_snap_m=max_snap_m
            )
        result = router.route(start, end)
    except RoutingError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(result.model_dump_json())
        return
    typer.echo(
        f"{result.distance_m / 1000:.2f} km, {result.duration_s / 60:.1f} min ({result.profile}), "
        f"{len(result.edges)} edges, {len(result.signals)} signals"
    )
    for sig in result.signals:
        typer.echo(f"  signal {sig.node_id} at +{sig.eta_s:.0f} s ({sig.lat:.6f}, {sig.lon:.6f})")


def main() -> None:
    """Stand-alone entry (``python -m routing.cli``) until the main CLI mounts these."""
    app = typer.Typer(help="Yishao routing.", no_args_is_help=True)
    app.add_typer(graph_app, name="graph")
    app.command("route")(route)
    app()


if __name__ == "__main__":
    main()
