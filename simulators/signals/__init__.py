"""Traffic signals of a drill: fixed-time plans, controllers honouring priority, cross traffic.

* :mod:`.timing`: a fixed-time plan for every signal node (:func:`make_timings`);
* :mod:`.controller`: :class:`SignalController`, a pure step-able controller that executes
  :class:`PriorityGrant` / :class:`PriorityCancel` safely and reports :class:`PriorityReport`;
* :mod:`.traffic`: the hourly traffic level and the delay priority added to cross streets.
"""

from __future__ import annotations

from .controller import (
    DelayEpisode,
    FlowFactor,
    PriorityCancel,
    PriorityGrant,
    PriorityReport,
    SignalController,
    SignalView,
)
from .timing import AXES, Axis, SignalTiming, axis_for, make_timings, other_axis
from .traffic import HOURLY_FLOW, cross_delay

__all__ = [
    "AXES",
    "HOURLY_FLOW",
    "Axis",
    "DelayEpisode",
    "FlowFactor",
    "PriorityCancel",
    "PriorityGrant",
    "PriorityReport",
    "SignalController",
    "SignalTiming",
    "SignalView",
    "axis_for",
    "cross_delay",
    "make_timings",
    "other_axis",
]
