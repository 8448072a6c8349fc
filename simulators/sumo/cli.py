"""``yishao sumo build``: the router's OSM extract as a SUMO network, with the signal mapping.

Mount with ``app.add_typer(sumo_app, name="sumo")``. Importing this module is cheap (SUMO and
the network code load only when a command runs), so ``yishao --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

sumo_app = typer.Typer(
    help="SUMO: build the simulation network of a map (needs the 'sumo' extra).",
    no_args_is_help=True,
)


@sumo_app.callback()
def _group() -> None:
    """SUMO: build the simulation network of a map (needs the 'sumo' extra)."""


@sumo_app.command("build")
def build(
    osm: Annotated[Path, typer.Option("--osm", help="The OSM extract the router uses.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the network and its mapping.")],
    variant: Annotated[
        str,
        typer.Option(
            "--variant",
            help="joined: one light per physical intersection (default); plain: every OSM "
            "signal node its own light.",
        ),
    ] = "joined",
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    unmapped: Annotated[
        int, typer.Option("--unmapped", help="List at most this many unmapped signals.")
    ] = 20,
) -> None:
    """netconvert the extract (OSM signals kept as lights) and map signals and edges."""
    from routing import RoutingError

    from ._home import SumoMissingError
    from .network import BuildError, MapStatus, Variant, build_network

    try:
        chosen = Variant(variant)
    except ValueError as exc:
        raise typer.BadParameter(
            f"--variant must be one of {', '.join(v.value for v in Variant)}"
        ) from exc
    if not osm.is_file():
        typer.secho(f"error: --osm: no such OSM file: {osm}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    started = time.perf_counter()

    def say(label: str) -> None:
        if not as_json:
            typer.echo(f"  {label} ({time.perf_counter() - started:.1f} s)", err=True)

    try:
        net = build_network(osm, out, variant=chosen, force=force, progress=say)
    except (SumoMissingError, BuildError, RoutingError, OSError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    s = net.summary
    missing = [x for x in net.mapping.signals if x.status is not MapStatus.MAPPED]
    if as_json:
        body = {
            "out": str(out),
            "net_file": str(net.net_file),
            "summary": s.model_dump(mode="json"),
            "not_mapped": [
                {
                    "intersection_id": x.intersection_id,
                    "status": x.status.value,
                    "lat": x.lat,
                    "lon": x.lon,
                    "reason": x.reason,
                }
                for x in missing
            ],
            "build_s": round(time.perf_counter() - started, 3),
        }
        typer.echo(json.dumps(body, ensure_ascii=False, indent=1))
        return
    typer.echo(f"network   {net.net_file}")
    typer.echo(
        f"router    {s.router_nodes} nodes, {s.router_edges} edges, {s.router_signals} signals"
    )
    typer.echo(
        f"SUMO      {s.sumo_junctions} junctions, {s.sumo_edges} drivable edges, "
        f"{s.sumo_tls} traffic lights ({s.tls_serving_router_signals} serve router signals, "
        f"{s.tls_without_router_signal} serve none)"
    )
    typer.echo(
        f"signals   {s.signals_mapped} mapped, {s.signals_partial} partly, "
        f"{s.signals_unmapped} unmapped"
    )
    typer.echo(
        f"edges     {s.edges_mapped} mapped, {s.edges_inside_junction} inside joined "
        f"junctions, {s.edges_unmapped} unmapped"
    )
    for x in missing[:unmapped]:
        typer.echo(f"  {x.status.value:9} {x.intersection_id} ({x.lat}, {x.lon}): {x.reason}")
    if len(missing) > unmapped:
        typer.echo(f"  ... {len(missing) - unmapped} more (--json lists all)")
