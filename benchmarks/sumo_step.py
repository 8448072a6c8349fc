"""SUMO benchmark: network build, and the cost of a simulation step with the light controllers.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python benchmarks/sumo_step.py [--osm FILE] [--period 1.0] [--steps 1800]

Builds (or loads from its cache folder) the SUMO network of the Shanghai extract, makes
background traffic with SUMO's randomTrips (one trip every ``--period`` seconds, routed by
duarouter), then runs the same seed twice: SUMO alone, and SUMO with a :class:`LightController`
on every traffic light observed each step (the gateway's worst case: every light of the map
under priority watch). Prints ms per step, vehicles in the network, and the controllers'
overhead as a ratio of the plain step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository root first on sys.path)

from routing import Router, sample_graph_path
from simulators.sumo._home import sumo_env, sumo_home
from simulators.sumo._traci import TraciLights, libsumo_run, sumo_argv
from simulators.sumo.network import build_network


def trips(net_file: Path, out: Path, *, period_s: float, end_s: int, seed: int) -> Path:
    """Random background trips over the network (SUMO's randomTrips + duarouter)."""
    routes = out / f"bg-p{period_s:g}-e{end_s}-s{seed}.rou.xml"
    if routes.is_file():
        return routes
    tool = sumo_home() / "tools" / "randomTrips.py"
    argv = [
        sys.executable, str(tool), "-n", str(net_file), "-e", str(end_s), "-p", f"{period_s:g}",
        "--seed", str(seed), "--fringe-factor", "5", "--min-distance", "300",
        "--validate", "-r", str(routes), "-o", str(out / "trips.xml"),
    ]  # fmt: skip
    subprocess.run(argv, env=sumo_env(), check=True, capture_output=True)
    return routes


def run(net_file: Path, routes: Path, steps: int, *, controllers: bool) -> tuple[float, float]:
    """(ms per step, mean vehicles) over ``steps`` steps."""
    with libsumo_run(
        sumo_argv(net_file, routes=[routes], extra=["--time-to-teleport", "300"])
    ) as conn:
        lights = TraciLights(conn) if controllers else None
        if lights is not None:
            for tls in conn.trafficlight.getIDList():
                lights.controller(tls)
        vehicles = 0
        started = time.perf_counter()
        for _ in range(steps):
            conn.simulationStep()
            if lights is not None:
                lights.step()
            vehicles += conn.vehicle.getIDCount()
        elapsed = time.perf_counter() - started
    return 1000.0 * elapsed / steps, vehicles / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osm", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "yishao" / "sumo-bench")
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=1800)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    osm = args.osm or sample_graph_path()
    started = time.perf_counter()
    router = Router.from_file(osm, cache_dir=args.out / "graphs")
    graph_s = time.perf_counter() - started
    started = time.perf_counter()
    net = build_network(osm, args.out / osm.stem, graph=router.graph, force=True)
    build_s = time.perf_counter() - started
    s = net.summary
    print(f"map          {osm.name}: {s.router_signals} router signals, {s.sumo_tls} SUMO lights")
    print(f"router graph {graph_s:.1f} s (cached after the first run)")
    print(
        f"SUMO build   {build_s:.1f} s "
        f"(netconvert {s.netconvert_s:.1f} s, mapping {s.mapping_s:.1f} s)"
    )
    print(
        f"mapping      {s.signals_mapped} mapped, {s.signals_partial} partly, "
        f"{s.signals_unmapped} unmapped; edges {s.edges_unmapped} of {s.router_edges} unmapped"
    )
    routes = trips(net.net_file, net.folder, period_s=args.period, end_s=args.steps, seed=args.seed)
    plain_ms, plain_veh = run(net.net_file, routes, args.steps, controllers=False)
    ctrl_ms, _ = run(net.net_file, routes, args.steps, controllers=True)
    print(
        f"SUMO step    {plain_ms:.3f} ms "
        f"({plain_veh:.0f} vehicles on average, one trip / {args.period:g} s)"
    )
    print(f"+ every light under a controller: {ctrl_ms:.3f} ms (x{ctrl_ms / plain_ms:.2f})")


if __name__ == "__main__":
    main()
