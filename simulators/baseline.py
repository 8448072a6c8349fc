"""The paired baseline: a drive repeated without priority, for the report's "without" figures.

The same route, leaving at the same second, through fresh controllers running the same seeded
fixed-time plans that receive no grants: what the vehicle would have met with no green wave.
Batch and live drills both pair every drive with it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from dispatch.core.assign import LegKind
from routing import Route

from .signals import FlowFactor, SignalController, SignalTiming, SignalView
from .vehicles import Bluelight, VehicleSim


def drive_without(
    *,
    unit_id: str,
    route: Route,
    depart_s: float,
    kind: LegKind,
    timings: Mapping[int, SignalTiming],
    flow_factor: FlowFactor,
    signal_nodes: Collection[int],
    signal_delay_s: float,
    max_drive_s: float,
    bluelight: Bluelight | None = None,
) -> VehicleSim:
    """Drive a route again on fixed-time signals, no requests.

    Args:
        unit_id, route, depart_s, kind: the drive to repeat.
        timings: every signal's fixed-time plan (the drill's, same seed).
        flow_factor: share of peak traffic at a drill second (the same as the drive met).
        signal_nodes, signal_delay_s: as :class:`VehicleSim` takes them.
        max_drive_s: a drive longer than this is cut off (arrived at the cut).
        bluelight: how the vehicle crosses a red (as the drive did; ``None``: it waits).

    Returns:
        The finished vehicle (``arrived_s``, ``passed``).
    """
    vehicle = VehicleSim(
        unit_id=unit_id,
        route=route,
        depart_s=depart_s,
        kind=kind,
        signal_delay_s=signal_delay_s,
        signal_nodes=signal_nodes,
        emit_positions=False,
        bluelight=bluelight,
    )
    controllers: dict[int, SignalController] = {}

    def lookup(iid: int, at_s: float) -> SignalView:
        ctrl = controllers.get(iid)
        if ctrl is None:
            ctrl = SignalController(timings[iid], now_s=at_s, flow_factor=flow_factor)
            controllers[iid] = ctrl
        ctrl.advance(at_s)
        return ctrl.view()

    t = math.floor(depart_s)
    stop = depart_s + max_drive_s
    while not vehicle.done and t <= stop:
        vehicle.step(float(t), lookup)
        t += 1
    if not vehicle.done:
        vehicle.done, vehicle.arrived_s = True, float(t)
    return vehicle
