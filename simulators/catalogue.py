"""The built-in scenarios, as TOML text (the Fuyang set and a mixed day).

Kept apart from :mod:`simulators.scenarios` and free of imports beyond the standard library,
so that ``yishao --help`` can name them without loading the models.
"""

from __future__ import annotations

from collections.abc import Mapping

BUILTIN_TOML: Mapping[str, str] = {
    "taxi-rollover": """
name = "taxi-rollover"
description = \"""A taxi on its side with people trapped: the passenger calls 122, a passer-by \
120; whistle; traffic police, ambulance and fire rescue. Eight crashes across an evening rush, \
each at a fresh place.\"""
start = 2025-11-28T17:00:00+08:00
duration_h = 3
[[event]]
name = "taxi rollover"
place = "random"
count = 8
[[event.calls]]
centre = "122"
call_type = "traffic_accident_entrapment"
severity = 4
description = "taxi on its side, two people trapped"
[[event.calls]]
centre = "120"
call_type = "critical_patient"
severity = 4
after_s = 45
offset_m = 60
description = "crash, driver bleeding, not moving"
""",
    "drowning": """
name = "drowning"
description = \"""Someone in the water: a 120 call from the bank, whistle; fire water rescue, \
ambulance, police. Near water when the map knows water, else anywhere.\"""
start = 2025-07-19T13:00:00+08:00
duration_h = 6
[[event]]
name = "drowning"
place = "water"
count = 6
[[event.calls]]
centre = "120"
call_type = "drowning"
severity = 5
description = "child in the river, not surfacing"
""",
    "night-market": """
name = "night-market"
description = \"""An evening cluster of fights, noise and disputes around one night market: \
police only, no whistle.\"""
start = 2025-11-28T19:00:00+08:00
duration_h = 6
[[place]]
name = "night market"
kind = "market"
[[stream]]
name = "night market"
place = "night market"
radius_m = 350
calls_per_hour = 4
mix = { fight = 0.35, noise = 0.35, dispute = 0.3 }
joint = false
""",
    "labour-dispute": """
name = "labour-dispute"
description = \"""Year-end wage disputes at an industrial area in the weeks before the Spring \
Festival.\"""
start = 2026-01-20T08:00:00+08:00
duration_h = 10
[[place]]
name = "industrial park"
kind = "industrial"
[[stream]]
name = "wage disputes"
place = "industrial park"
radius_m = 800
calls_per_hour = 1.5
mix = { labour_dispute = 0.8, dispute = 0.15, fight = 0.05 }
""",
    "garage-theft": """
name = "garage-theft"
description = "Night thefts from cars and bikes inside a residential compound's garage."
start = 2025-11-29T00:00:00+08:00
duration_h = 5
[[place]]
name = "compound"
kind = "residential"
[[stream]]
name = "garage thefts"
place = "compound"
radius_m = 250
calls_per_hour = 1.2
mix = { theft = 0.9, dispute = 0.1 }
joint = false
""",
    "mixed-day": """
name = "mixed-day"
description = \"""A day of background calls to 122, 120 and 119, Poisson by hour with a per-type \
mix, and joint reports of one emergency to two centres.\"""
start = 2025-11-28T00:00:00+08:00
duration_h = 24
[[stream]]
name = "background"
calls_per_hour = 13
[stream.mix]
traffic_accident = 0.20
traffic_accident_entrapment = 0.05
drowning = 0.01
fall_from_height = 0.03
critical_patient = 0.17
fire = 0.05
natural_disaster = 0.005
fight = 0.10
dispute = 0.14
labour_dispute = 0.03
theft = 0.09
noise = 0.10
other = 0.025
""",
}


def builtin_names() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(BUILTIN_TOML)
