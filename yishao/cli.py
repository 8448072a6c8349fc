"""``yishao``: every command of the service, the road graph and the drills."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

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


def describe(exc: BaseException) -> str:
    """One line naming what was wrong with the input (no traceback, no echo of the input)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "input"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{exc.title}: {where}: {first['msg']}{more}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def main(argv: Sequence[str] | None = None) -> None:
    """Run a command; bad input (a missing or malformed file, a wrong value) is one line on
    stderr and exit status 2. ``YISHAO_DEBUG=1`` shows the traceback instead."""
    from routing.errors import RoutingError

    try:
        app(args=list(argv) if argv is not None else None, prog_name="yishao")
    except KeyboardInterrupt:
        sys.stderr.write("yishao: interrupted\n")
        raise SystemExit(130) from None
    except (OSError, ValueError, RoutingError) as exc:
        if os.environ.get("YISHAO_DEBUG"):
            raise
        sys.stderr.write(f"yishao: error: {describe(exc)}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
