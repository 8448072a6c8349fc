"""The pure role rules and filters, as tables (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dispatch.core.audience import Audience, IncidentInfo, Subscription, stream_key, view_of
from dispatch.errors import ForbiddenError
from dispatch.models import Role

PLACE = IncidentInfo(lat=31.2, lon=121.4, agencies=frozenset({"ems"}), compound_id="C1")
JOINED = IncidentInfo(
    lat=31.2, lon=121.4, agencies=frozenset({"ems"}), compound_id="C1", property_state="open"
)


def ev(type: str, incident_id: str | None = "I1", known: IncidentInfo | None = None, **data: Any):  # type: ignore[no-untyped-def]
    return view_of("1-0", (1, 0), type, incident_id, data, known)


@pytest.mark.parametrize(
    ("role", "sub", "scope", "event", "seen"),
    [
        (Role.DISPATCHER, "d", [], ev("greenwave.request", intersection_id=1), True),
        (Role.OBSERVER, "o", [], ev("whistle.summons", summons={"coordinator": "x"}), True),
        (Role.COORDINATOR, "c", [], ev("whistle.summons", summons={"coordinator": "x"}), False),
        (Role.COORDINATOR, "c", [], ev("incident.merged"), False),
        (Role.TERMINAL, "U1", [], ev("route.planned", unit_id="U1"), True),
        (Role.TERMINAL, "U1", [], ev("route.planned", unit_id="U2"), False),
        (Role.TERMINAL, "U1", [], ev("unit.updated", None, unit={"id": "U1"}), True),
        (Role.SIGNAL, "s", ["7"], ev("greenwave.update", intersection_id=7), True),
        (Role.SIGNAL, "s", ["7"], ev("greenwave.update", intersection_id=8), False),
        (Role.SIGNAL, "s", ["7"], ev("greenwave.planned", intersection_id=7), False),
        (Role.SIGNAL, "gw", ["*"], ev("greenwave.request", intersection_id=123456), True),
        (Role.SIGNAL, "gw", ["*"], ev("incident.created", intersection_id=None), False),
        # Need-to-know: the incident's own changes while the team is joined, never units.
        (Role.PROPERTY, "p", ["C1"], ev("incident.updated", known=JOINED), True),
        (Role.PROPERTY, "p", ["C1"], ev("assignment.created", known=JOINED), False),
        (Role.PROPERTY, "p", ["C1"], ev("incident.updated", known=PLACE), False),
        (Role.PROPERTY, "p", ["C2"], ev("incident.updated", known=JOINED), False),
        (Role.PROPERTY, "p", ["C1"], ev("roster.updated", None), False),
    ],
)
def test_role_rules(role: Role, sub: str, scope: list[str], event: Any, seen: bool) -> None:
    assert Audience(role=role, sub=sub, scope=frozenset(scope)).wants(event) is seen


def test_coordinator_follows_incidents_once_summoned() -> None:
    a = Audience(role=Role.COORDINATOR, sub="c")
    assert not a.wants(ev("incident.merged"))
    assert a.wants(ev("whistle.summons", summons={"coordinator": "c"}))
    assert a.wants(ev("incident.merged"))
    assert not a.wants(ev("incident.merged", "I2"))


def test_terminal_follows_its_assignment() -> None:
    a = Audience(role=Role.TERMINAL, sub="U1")
    assert not a.wants(ev("incident.merged"))
    assert a.wants(ev("assignment.created", unit_id="U1"))
    assert a.wants(ev("incident.merged"))
    assert not a.wants(ev("whistle.sounded"))  # incident updates only
    assert a.wants(ev("unit.updated", None, unit={"id": "U1", "incident_id": None}))
    assert not a.wants(ev("incident.merged"))


@pytest.mark.parametrize(
    ("subscription", "event", "seen"),
    [
        ({"incidents": ["I1"]}, ev("x"), True),
        ({"incidents": ["I2"]}, ev("x"), False),
        ({"incidents": ["I2"]}, ev("x", None), False),
        ({"agencies": ["fire"]}, ev("x", known=PLACE), False),
        ({"agencies": ["ems"]}, ev("x", known=PLACE), True),
        ({"agencies": ["fire"]}, ev("roster.updated", None), True),
        ({"bbox": [121, 31, 122, 32]}, ev("x", known=PLACE), True),
        ({"bbox": [100, 20, 101, 21]}, ev("x", known=PLACE), False),
        ({"bbox": [100, 20, 101, 21]}, ev("x"), True),  # no known place: passes
        ({"bbox": [100, 20, 101, 21]}, ev("x", incident={"lat": 20.5, "lon": 100.5}), True),
    ],
)
def test_filters(subscription: dict[str, Any], event: Any, seen: bool) -> None:
    a = Audience(role=Role.DISPATCHER, sub="d")
    a.subscribe(Subscription.model_validate(subscription))
    assert a.wants(event) is seen


def test_scope_cannot_be_widened_and_bad_subscriptions_are_refused() -> None:
    sig = Audience(role=Role.SIGNAL, sub="s", scope=frozenset({"1"}))
    with pytest.raises(ForbiddenError):
        sig.subscribe(Subscription(intersections=["1", "2"]))
    prop = Audience(role=Role.PROPERTY, sub="p", scope=frozenset({"C1"}))
    with pytest.raises(ForbiddenError):
        prop.subscribe(Subscription(compounds=["C9"]))
    for bad in [{"bbox": [10, 0, 5, 1]}, {"bbox": [0, 0, 1]}, {"agencies": ["army"]}, {"x": 1}]:
        with pytest.raises(ValidationError):
            Subscription.model_validate(bad)


def test_stream_keys_order_numerically() -> None:
    assert stream_key("10-0") > stream_key("9-5")
    assert stream_key("5") == (5, 0)
    for bad in ["", "a-1", "1-b", "-1-0"]:
        with pytest.raises(ValueError):
            stream_key(bad)
