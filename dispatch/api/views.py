"""What a caller may read, gathered for the policy: summons, the terminal's unit, compounds.

The rules are :mod:`dispatch.core.policy`'s; this module reads the few facts they need (who
is summoned to which incident, which incident a terminal's unit serves) and applies them to
lists and single objects, so every read route narrows the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.core.whistle import Whistle
from dispatch.errors import ForbiddenError, NotFoundError
from dispatch.models import Incident, Principal, Role, Unit
from dispatch.services import Services


def compound_of(incident: Incident) -> str | None:
    """The compound the incident is in (decided at intake, kept on the incident)."""
    return incident.compound_id


def summons_of(whistle: Whistle) -> frozenset[str]:
    return frozenset(s.coordinator for s in whistle.summons)


async def summoned(svc: Services, who: Principal) -> dict[str, frozenset[str]]:
    """Incident id -> coordinators summoned to it, for the open whistles (coordinators only)."""
    if who.role is not Role.COORDINATOR:
        return {}
    return {w.incident_id: summons_of(w) for w in await svc.whistles.open_whistles()}


async def own_unit(svc: Services, who: Principal) -> tuple[Unit, ...]:
    if who.role is not Role.TERMINAL:
        return ()
    unit = await svc.store.get(Unit, svc.store.keys.unit(who.sub))
    return (unit,) if unit is not None else ()


async def readable(
    svc: Services, who: Principal, incidents: Sequence[Incident], *, what: str = "read incidents"
) -> list[Incident]:
    """The incidents ``who`` may read, as they may read them (a property account's read is
    audited as ``what``)."""
    if who.role in (Role.DISPATCHER, Role.OBSERVER, Role.ADMIN):
        return policy.visible_incidents(who, incidents)
    if who.role is Role.PROPERTY:
        seen = policy.visible_incidents(who, incidents, compound_of=compound_of)
        await svc.property_desk.audit(who, what, count=len(seen))
        return seen
    by_incident = await summoned(svc, who)
    return policy.visible_incidents(
        who,
        incidents,
        summoned_of=lambda i: by_incident.get(i.id, frozenset()),
        compound_of=compound_of,
        units=await own_unit(svc, who),
    )


async def incident_for(
    svc: Services,
    who: Principal,
    incident_id: str,
    *,
    what: str = "read incident",
    least_ok: bool = True,
) -> Incident:
    """The incident, as ``who`` may read it.

    Args:
        what: how a property account's read is audited.
        least_ok: False for reads beyond the incident itself (its units, recommendations,
            EIDO, CAP, audit trail): a property account is refused them.

    Raises:
        NotFoundError: no such incident. ForbiddenError: ``who`` may not read it.
    """
    incident = await svc.store.get_incident(incident_id)
    if incident is None:
        raise NotFoundError(f"no incident {incident_id}")
    target = await incident_target(svc, who, incident)
    decision = policy.decide(who, Action.READ_INCIDENT, target)
    if who.role is Role.PROPERTY:
        await svc.property_desk.audit(who, what, incident_id=incident_id, allowed=decision.allowed)
        if decision.allowed and not least_ok:
            raise ForbiddenError(f"a property account reads only the incident itself ({what})")
    if not decision.allowed:
        raise ForbiddenError(decision.reason)
    return policy.redact(who, incident)


async def incident_target(svc: Services, who: Principal, incident: Incident) -> Target:
    """What the rules need to know of one incident for ``who``."""
    summoned_to: frozenset[str] = frozenset()
    if who.role is Role.COORDINATOR and incident.whistle_id is not None:
        whistle = await svc.store.get(Whistle, svc.store.keys.whistle(incident.whistle_id))
        summoned_to = summons_of(whistle) if whistle is not None else frozenset()
    return Target(
        incident=incident,
        summoned=summoned_to,
        compound_id=compound_of(incident),
        units=await own_unit(svc, who),
    )


async def readable_units(svc: Services, who: Principal) -> list[Unit]:
    """The units ``who`` may see: all (dispatchers, observers), its own (a terminal), those of
    the incidents a coordinator is summoned to."""
    if who.role is Role.TERMINAL:
        return list(await own_unit(svc, who))
    units = await svc.fleet.units()
    if who.role is Role.COORDINATOR:
        mine = {i for i, subs in (await summoned(svc, who)).items() if who.sub in subs}
        return [u for u in units if u.incident_id in mine]
    return units


async def readable_whistles(svc: Services, who: Principal) -> list[Whistle]:
    whistles = await svc.whistles.open_whistles()
    if who.role is Role.COORDINATOR:
        return [w for w in whistles if who.sub in summons_of(w)]
    return whistles
