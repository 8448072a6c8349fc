"""A drill fleet generated from the map: stations spread over the graph, units, hospitals, roster.

Stations of each agency are spread by farthest-point sampling from a seeded first node (so they
cover the map as real stations cover a district), hospitals likewise. :func:`fleet_json` and
:func:`hospitals_json` give the shapes ``yishao fleet load`` and ``yishao hospitals load`` read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from dispatch.core.rosters import RotationRule
from dispatch.models import Agency, Hospital, Unit, UnitType
from routing import Router
from routing.graph import haversine_m

from .clock import substream


@dataclass(frozen=True, slots=True)
class StationPlan:
    """How many stations an agency has and what each one houses."""

    agency: Agency
    prefix: str
    stations: int
    units: tuple[tuple[UnitType, int], ...]


# Sized for a city-centre district of a few hundred calls a day.
DEFAULT_STATIONS: tuple[StationPlan, ...] = (
    StationPlan(Agency.POLICE, "PS", 6, ((UnitType.PATROL_CAR, 3),)),
    StationPlan(Agency.TRAFFIC, "TB", 4, ((UnitType.TRAFFIC_POLICE_CAR, 2),)),
    StationPlan(Agency.EMS, "EMS", 5, ((UnitType.AMBULANCE, 3),)),
    StationPlan(
        Agency.FIRE,
        "FS",
        3,
        ((UnitType.FIRE_ENGINE, 2), (UnitType.FIRE_RESCUE, 1), (UnitType.LADDER, 1)),
    ),
)
UNIT_PREFIX = {
    UnitType.PATROL_CAR: "P",
    UnitType.TRAFFIC_POLICE_CAR: "T",
    UnitType.AMBULANCE: "A",
    UnitType.FIRE_ENGINE: "E",
    UnitType.FIRE_RESCUE: "R",
    UnitType.LADDER: "L",
}


@dataclass(frozen=True, slots=True)
class Station:
    """A base: where units start and return to."""

    id: str
    agency: Agency
    node_index: int
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class SimFleet:
    """Everything a drill needs about who responds."""

    stations: tuple[Station, ...]
    units: tuple[Unit, ...]
    hospitals: tuple[Hospital, ...]
    roster: tuple[RotationRule, ...]


def spread_nodes(router: Router, count: int, rng: random.Random) -> list[int]:
    """``count`` node indices spread over the graph (farthest-point sampling, seeded start)."""
    g = router.graph
    count = min(count, g.node_count)
    if count <= 0:
        return []
    chosen = [rng.randrange(g.node_count)]
    best = haversine_m(g.node_lat, g.node_lon, g.node_lat[chosen[0]], g.node_lon[chosen[0]])
    while len(chosen) < count:
        nxt = int(np.argmax(best))
        chosen.append(nxt)
        best = np.minimum(
            best, haversine_m(g.node_lat, g.node_lon, g.node_lat[nxt], g.node_lon[nxt])
        )
    return chosen


def generate_fleet(
    router: Router,
    *,
    seed: int,
    day: date,
    stations: tuple[StationPlan, ...] = DEFAULT_STATIONS,
    hospitals: int = 4,
) -> SimFleet:
    """Stations, units, hospitals and one day's coordinator roster for a map.

    Args:
        router: the map.
        seed: drill seed.
        day: the first duty day the roster rotation covers.
        stations: station counts and contents per agency.
        hospitals: number of hospitals.

    Returns:
        The fleet; every unit available at its station.
    """
    g = router.graph
    all_stations: list[Station] = []
    units: list[Unit] = []
    for plan in stations:
        nodes = spread_nodes(router, plan.stations, substream(seed, "stations", plan.agency))
        for k, node in enumerate(nodes, start=1):
            st = Station(
                id=f"{plan.prefix}{k:02d}",
                agency=plan.agency,
                node_index=node,
                lat=float(g.node_lat[node]),
                lon=float(g.node_lon[node]),
            )
            all_stations.append(st)
            for unit_type, n in plan.units:
                for j in range(1, n + 1):
                    uid = f"{UNIT_PREFIX.get(unit_type, 'U')}-{st.id}-{j}"
                    units.append(
                        Unit(
                            id=uid,
                            agency=plan.agency,
                            type=unit_type,
                            callsign=uid,
                            station=st.id,
                            station_lat=st.lat,
                            station_lon=st.lon,
                        )
                    )
    hosp_nodes = spread_nodes(router, hospitals, substream(seed, "hospitals"))
    hosp = tuple(
        Hospital(
            id=f"H{k:02d}",
            name=f"Hospital {k}",
            lat=float(g.node_lat[n]),
            lon=float(g.node_lon[n]),
        )
        for k, n in enumerate(hosp_nodes, start=1)
    )
    # A daily rotation of three coordinators per agency: whatever day and duty change the drill
    # crosses, on_duty() names a primary and a backup.
    roster = tuple(
        RotationRule(agency=a, names=[f"{a.value}-coord-{k}" for k in (1, 2, 3)], start=day)
        for a in (Agency.TRAFFIC, Agency.EMS, Agency.FIRE)
    )
    return SimFleet(tuple(all_stations), tuple(units), hosp, roster)


def fleet_json(fleet: SimFleet) -> list[dict[str, Any]]:
    """The fleet as ``yishao fleet load`` reads it: ``[{id, agency, type, lat, lon, station}]``."""
    return [
        {
            "id": u.id,
            "agency": u.agency.value,
            "type": u.type.value,
            "lat": u.station_lat,
            "lon": u.station_lon,
            "station": u.station,
            "callsign": u.callsign,
        }
        for u in fleet.units
    ]


def hospitals_json(fleet: SimFleet) -> list[dict[str, Any]]:
    """Hospitals as ``yishao hospitals load`` reads them."""
    return [h.model_dump(mode="json") for h in fleet.hospitals]
