"""Calls as the 122/120/119 call-taking systems would send them, generated from a scenario.

Every emergency (a scripted event instance or a Poisson arrival) gets a group id; its first call
comes from the type's centre, and with the type's joint share a second centre reports the same
emergency a little later from a slightly different spot (the joint intake should merge them).
Everything is drawn from seeded streams keyed by the scenario's event and stream names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dispatch.models import CallEvent, CallType, Centre

from .clock import SimClock, substream
from .places import Place, PlaceFinder, PlaceSpec, jitter
from .scenarios import TYPE_PROFILES, CallSpec, Scenario, StreamSpec

# Second-centre calls come after the first: the second caller dials later, or was transferred.
JOINT_DELAY_S = (20.0, 180.0)
JOINT_OFFSET_M = 120.0
CALLER_OFFSET_M = 40.0


@dataclass(frozen=True, slots=True)
class ScheduledCall:
    """A call and when the centre's system sends it.

    Attributes:
        at_s: simulated second of arrival.
        call: the call as the centre sends it.
        group: the emergency it reports (two calls of one group are one emergency).
        source: the scenario event or stream it came from.
        place: the resolved place (node) of the emergency.
    """

    at_s: float
    call: CallEvent
    group: str
    source: str
    place: Place


def _severity(rng: random.Random, call_type: CallType) -> int:
    weights = TYPE_PROFILES[call_type].severity_weights
    return rng.choices(range(1, 6), weights=weights)[0]


class _Ids:
    def __init__(self) -> None:
        self.counts: dict[Centre, int] = {}

    def next(self, centre: Centre) -> str:
        n = self.counts.get(centre, 0) + 1
        self.counts[centre] = n
        return f"C{centre.value}-{n:05d}"


def generate_calls(
    scenario: Scenario, finder: PlaceFinder, clock: SimClock, *, seed: int
) -> list[ScheduledCall]:
    """All calls of a scenario, sorted by arrival.

    Args:
        scenario: the scenario.
        finder: resolves places on the loaded map.
        clock: the drill clock (its epoch is the scenario start).
        seed: drill seed.

    Returns:
        The calls in arrival order (ties by call id).

    Raises:
        ScenarioError: a place cannot be resolved (e.g. a point off the map).
    """
    places: dict[str, Place] = {}
    for pspec in scenario.places:
        places[pspec.name] = finder.resolve(pspec, substream(seed, "place", pspec.name), places)
    end_s = scenario.duration_h * 3600.0
    out: list[tuple[float, str, CallSpec | None, CallType, Centre, int, str, str, Place, float]]
    out = []
    for event in scenario.events:
        rng = substream(seed, "event", event.name)
        lo = event.from_h * 3600.0
        hi = min((event.to_h if event.to_h is not None else scenario.duration_h) * 3600.0, end_s)
        for k in range(event.count):
            at = rng.uniform(lo, hi) if hi > lo else lo
            place = places.get(event.place) or finder.resolve(
                PlaceSpec.model_validate({"name": f"{event.name} #{k + 1}", "kind": event.place}),
                rng,
                places,
            )
            group = f"{event.name}#{k + 1}"
            for spec in event.calls:
                sev = spec.severity if spec.severity is not None else _severity(rng, spec.call_type)
                out.append(
                    (at + spec.after_s, group, spec, spec.call_type, spec.centre, sev,
                     event.name, spec.description or "", place, spec.offset_m)
                )  # fmt: skip
    for stream in scenario.streams:
        for at, group, call_type, centre, sev, place, offset in _stream_calls(
            stream, scenario, finder, clock, places, seed=seed
        ):
            out.append((at, group, None, call_type, centre, sev, stream.name, "", place, offset))
    out.sort(key=lambda r: (r[0], r[1], r[4].value))
    ids = _Ids()
    calls: list[ScheduledCall] = []
    for at, group, _spec, call_type, centre, sev, source, text, place, offset in out:
        if at >= end_s + 3600.0:
            continue
        rng = substream(seed, "caller", group, centre.value, call_type.value)
        lat, lon = jitter(place.lat, place.lon, offset, rng)
        call = CallEvent(
            call_id=ids.next(centre),
            centre=centre,
            call_type=call_type,
            lat=lat,
            lon=lon,
            received_at=clock.at(at),
            description=text or f"{call_type.value.replace('_', ' ')} ({source})",
            caller_phone=f"139{rng.randrange(10**8):08d}",
            severity=sev,
        )
        calls.append(ScheduledCall(at, call, group, source, place))
    return calls


def _stream_calls(
    stream: StreamSpec,
    scenario: Scenario,
    finder: PlaceFinder,
    clock: SimClock,
    places: dict[str, Place],
    *,
    seed: int,
) -> list[tuple[float, str, CallType, Centre, int, Place, float]]:
    """Poisson arrivals by thinning: candidates at the peak rate, kept at rate(hour)/peak."""
    rng = substream(seed, "stream", stream.name)
    lo = stream.from_h * 3600.0
    hi = min(stream.to_h if stream.to_h is not None else scenario.duration_h, scenario.duration_h)
    hi_s = hi * 3600.0
    mean_w = sum(stream.hourly) / 24.0
    peak = stream.calls_per_hour * max(stream.hourly) / mean_w / 3600.0
    types = sorted(stream.mix)
    weights = [stream.mix[t] for t in types]
    anchor = places.get(stream.place) if stream.place else None
    out: list[tuple[float, str, CallType, Centre, int, Place, float]] = []
    t = lo
    n = 0
    while True:
        t += rng.expovariate(peak)
        if t >= hi_s:
            break
        hour = int(clock.hour_of_day(t)) % 24
        if rng.random() * max(stream.hourly) > stream.hourly[hour]:
            continue
        n += 1
        call_type = rng.choices(types, weights=weights)[0]
        profile = TYPE_PROFILES[call_type]
        centre = stream.centre or profile.centre
        if anchor is not None:
            idx = finder.node_within(anchor.lat, anchor.lon, stream.radius_m, rng)
            how = f"within {stream.radius_m:g} m of {anchor.name}"
        else:
            idx = finder.random_node(rng)
            how = "random"
        g = finder.router.graph
        place = Place(
            name=f"{stream.name} #{n}",
            node_index=idx,
            node_id=int(g.node_osmid[idx]),
            lat=float(g.node_lat[idx]),
            lon=float(g.node_lon[idx]),
            how=how,
        )
        group = f"{stream.name}#{n}"
        sev = _severity(rng, call_type)
        out.append((t, group, call_type, centre, sev, place, CALLER_OFFSET_M))
        if stream.joint and profile.joint and rng.random() < profile.joint_share:
            second_centre, second_type = profile.joint[rng.randrange(len(profile.joint))]
            delay = rng.uniform(*JOINT_DELAY_S)
            # The second caller sees the same emergency: its severity is at least as high.
            sev2 = max(sev, _severity(rng, second_type))
            out.append((t + delay, group, second_type, second_centre, sev2, place, JOINT_OFFSET_M))
    return out
