"""The cross traffic a signal serves: its flow by hour, and the delay priority added to it.

Controllers scale their peak flows by :data:`HOURLY_FLOW` (the local hour of the drill), and
:func:`cross_delay` reads the perturbation episodes a controller recorded (each axis' queue
integral with priority and under the plan, same arrivals) into what priority cost the cross
streets.
"""

from __future__ import annotations

from .controller import SignalController
from .timing import Axis

# Share of peak flow by local hour (0..23): quiet nights, morning and evening peaks.
HOURLY_FLOW: tuple[float, ...] = (
    0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.9, 1.0, 0.9, 0.8, 0.8,
    0.8, 0.8, 0.8, 0.85, 0.95, 1.0, 1.0, 0.85, 0.7, 0.6, 0.45, 0.35,
)  # fmt: skip


def cross_delay(ctrl: SignalController | None) -> tuple[float, float, int]:
    """What priority cost the cross streets of one signal over a drill.

    Returns:
        ``(added_veh_s, baseline_veh_s, extra_red_s)``: the extra queueing (vehicle-seconds)
        on the approaches crossing a prioritised movement during the disturbed cycles, those
        approaches' usual fixed-time delay over the same cycles, and the extra red seconds.
        When both axes were prioritised in one episode only added delay counts.
    """
    added = base = 0.0
    extra_red = 0
    for ep in ctrl.episodes if ctrl is not None else []:
        prio = set(ep.prioritised)
        cross = [a for a in Axis if a not in prio] if len(prio) < 2 else list(Axis)
        for a in cross:
            diff = ep.actual_veh_s[a] - ep.baseline_veh_s[a]
            if len(prio) >= 2:
                diff = max(diff, 0.0)
            added += diff
            base += ep.cycles * ep.cycle_delay_veh_s[a]
            extra_red += ep.extra_red_s[a]
    return added, base, extra_red
