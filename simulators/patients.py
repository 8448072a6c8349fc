"""The simulated patient: whether the ambulance crew takes them to hospital.

Dispatch plans a transport leg for every ambulance (:func:`dispatch.core.assign.plans_transport`):
the destination and its green wave are ready before the crew reaches the patient. Whether the
patient is then taken is the crew's call on scene, which a drill has to model. This is that
model, not a dispatch rule: a patient of a critical call type, or of any call at severity 3 or
more, goes to hospital; the others are treated on scene.
"""

from __future__ import annotations

from dispatch.models import CallType, Incident

# Incidents whose patient goes to hospital whatever the severity.
CRITICAL_TYPES = frozenset(
    {
        CallType.CRITICAL_PATIENT,
        CallType.DROWNING,
        CallType.FALL_FROM_HEIGHT,
        CallType.TRAFFIC_ACCIDENT_ENTRAPMENT,
    }
)
# From this severity (1..5) any patient goes to hospital.
TRANSPORT_SEVERITY = 3


def takes_patient(incident: Incident) -> bool:
    """Whether the ambulance crew on scene transports a patient of this incident."""
    if set(incident.call_types) & CRITICAL_TYPES:
        return True
    return (incident.severity or 0) >= TRANSPORT_SEVERITY
