"""``yishao``: every command of the service, the road graph and the drills."""

from __future__ import annotations

from dispatch.cli import app
from pivots.cli import app as pivots_app
from routing.cli import graph_app, route
from simulators.cli import drill
from simulators.sumo.cli import sumo_app

app.add_typer(graph_app, name="graph", help="Build and inspect road graphs.")
app.command("route")(route)
app.command("drill")(drill)
app.add_typer(sumo_app, name="sumo", help="SUMO networks for proving the green wave.")
app.add_typer(pivots_app, name="pivots", help="Pivot posts (支点) placed from incident history.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
