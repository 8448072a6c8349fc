"""Who may do what: the authorization model, role x agency x scope x action, in one place.

Every interface asks this module: the REST routes (:mod:`dispatch.api.deps`), the websocket
messages (:mod:`dispatch.api.ws`, :mod:`dispatch.api.ws_live`), the snapshot, and the push
hub's role rules (:mod:`dispatch.core.audience`). :data:`MODEL` is the written model; the
README's table is generated from it (``yishao policy``), and a test walks every route and
websocket message against every role and agency and compares the answers with it.

The principles:

- A centre writes only what is its own: its units, its calls, its agencies' part of an
  incident (assigning its own units; sounding the whistle is 120's and 119's, protecting a
  route is 122's). Nobody writes another agency's units or assigns them.
- Joint actions on an incident several agencies work (closing it, splitting a call out) are
  the lead agency's: the agency of the centre that took its first call. Another involved
  agency asks (``close`` records a request the lead sees); it does not act.
- Reads follow need-to-know: the three centres' dispatchers share the one screen (that is
  joint intake), coordinators see the incidents they are summoned to, a crew its own unit and
  its incident, a property team the incidents of its compounds, observers everything with
  the callers' words and numbers taken out, a signal controller only its green-wave messages.
- The claims must match the object: the unit's agency, the summons' coordinator and agency,
  the call's centre, the intersection in the controller's scope.
- An admin may do everything (and is the only one who revokes tokens and stores drill reports).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dispatch.core import compounds as _compounds
from dispatch.core import property as _property
from dispatch.models import (
    AGENCY_CENTRE,
    CENTRE_AGENCY,
    Agency,
    CallRecord,
    Centre,
    Incident,
    Principal,
    Role,
    Unit,
)

# Agencies that dispatch: a ``dispatcher`` token of any other agency is refused everything a
# dispatcher does (property teams have their own role).
DISPATCHING = frozenset({Agency.POLICE, Agency.TRAFFIC, Agency.EMS, Agency.FIRE})
# Scope entry of the 122 signal-control gateway: every intersection of the district.
ALL_INTERSECTIONS = "*"


class Action(StrEnum):
    """Everything a caller can ask the service to do, by interface-independent name."""

    READ_INCIDENT = "incident.read"
    READ_UNITS = "units.read"
    READ_WHISTLES = "whistles.read"
    READ_ROSTER = "roster.read"
    READ_REPORTS = "reports.read"
    READ_KPIS = "kpis.read"
    READ_DEAD = "calls.dead.read"
    READ_MAP = "map.read"
    READ_SNAPSHOT = "snapshot.read"
    POST_CALL = "call.post"
    ASSIGN = "incident.assign"
    SPLIT = "incident.split"
    CLOSE = "incident.close"
    SOUND_WHISTLE = "whistle.sound"
    ENABLE_GREENWAVE = "greenwave.enable"
    ACK_WHISTLE = "whistle.ack"
    PUT_UNIT = "unit.put"
    PUT_HOSPITALS = "hospitals.put"
    PUT_ROSTER = "roster.put"
    PUT_REPORT = "report.put"
    ISSUE_CAP = "cap.issue"
    POST_EIDO = "eido.post"
    TERMINAL_POSITION = "terminal.position"
    TERMINAL_STATUS = "terminal.status"
    SIGNAL_STATUS = "signal.status"
    REVOKE_TOKENS = "tokens.revoke"
    # compounds and their property teams (issue 15)
    READ_COMPOUNDS = "compounds.read"
    PUT_COMPOUND = "compound.put"
    JOIN_PROPERTY = "property.join"
    PROPERTY_STATUS = "property.status"
    # referral of disputes to mediation (issue 15)
    REFER = "referral.create"
    READ_REFERRALS = "referrals.read"
    UPDATE_REFERRAL = "referral.update"
    # pivot posts (issue 16)
    READ_PIVOTS = "pivots.read"
    PUT_PIVOT_PLAN = "pivots.plan.put"
    POST_PIVOT_UNIT = "pivots.post"


@dataclass(frozen=True, slots=True)
class Target:
    """What an action is about, as far as the rule needs to know (all optional)."""

    incident: Incident | None = None
    units: tuple[Unit, ...] = ()
    # The agency a unit being defined claims (PUT /api/units: the body's agency).
    unit_agency: Agency | None = None
    centre: Centre | None = None
    # A whistle's summons: (coordinator, agency) pairs; and who is summoned to the incident.
    summons: tuple[tuple[str, Agency], ...] = ()
    summoned: frozenset[str] = frozenset()
    intersection_id: str | None = None
    compound_id: str | None = None
    roster_agencies: frozenset[Agency] = frozenset()
    # A referral's mediation body (the mediator's scope must name it).
    mediation_body: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: allowed, or why not (the reason names the rule, never the secret)."""

    allowed: bool
    reason: str = ""
    # For joint actions: not allowed to act, but allowed to ask the lead agency.
    may_request: bool = False


ALLOW = Decision(True)

Check = Callable[[Principal, Target], Decision]


@dataclass(frozen=True, slots=True)
class Rule:
    """One action's rule: who may ask at all (roles, and for dispatchers which agencies), and
    the condition on the object, in words (``condition``) and as code (``check``)."""

    roles: frozenset[Role]
    condition: str
    check: Check = field(repr=False)
    agencies: frozenset[Agency] | None = None


def lead_agency(incident: Incident) -> Agency | None:
    """The agency of the centre that took the incident's first call (None: no call yet)."""
    return CENTRE_AGENCY[incident.calls[0].centre] if incident.calls else None


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def _dispatching(who: Principal) -> Decision | None:
    if who.role is Role.DISPATCHER and who.agency not in DISPATCHING:
        return _deny(f"a {who.agency.value} token does not dispatch")
    return None


def _any(who: Principal, target: Target) -> Decision:
    return _dispatching(who) or ALLOW


def _sees_incident(who: Principal, target: Target) -> Decision:
    incident = target.incident
    role = who.role
    if role in (Role.DISPATCHER, Role.OBSERVER):
        return _dispatching(who) or ALLOW
    if incident is None:
        return _deny("no incident named")
    if role is Role.COORDINATOR:
        if who.sub in target.summoned:
            return ALLOW
        return _deny(f"coordinator {who.sub} is not summoned to incident {incident.id}")
    if role is Role.TERMINAL:
        if any(u.id == who.sub and u.incident_id == incident.id for u in target.units):
            return ALLOW
        return _deny(f"unit {who.sub} is not assigned to incident {incident.id}")
    if role is Role.PROPERTY:
        return _property_sees(who, target, incident)
    return _deny(f"a {role.value} reads no incidents")


def _property_sees(who: Principal, target: Target, incident: Incident) -> Decision:
    # Need-to-know: its compounds, types on the compound list, and only while its team is
    # joined and the incident open.
    compound = target.compound_id
    if compound is None or compound not in who.scope:
        return _deny(f"incident {incident.id} is not in your compounds")
    if not _compounds.property_may_see(incident.call_types):
        return _deny(f"incident {incident.id} is not of a type on the compound list")
    if not _property.team_active(incident):
        return _deny(f"your team is not joined to incident {incident.id}")
    return ALLOW


def _compound_team(who: Principal, target: Target) -> Decision:
    if who.role is Role.PROPERTY:
        if target.incident is None:
            return _deny("no incident named")
        return _property_sees(who, target, target.incident)
    return _dispatching(who) or ALLOW


def _refers(who: Principal, target: Target) -> Decision:
    if who.role is Role.TERMINAL:
        # An officer on scene: a police unit's terminal, assigned to the incident.
        incident = target.incident
        unit = target.units[0] if target.units else None
        if incident is None or unit is None or unit.id != who.sub:
            return _deny(f"unit {who.sub} is not assigned to this incident")
        if unit.agency is not Agency.POLICE or who.agency is not Agency.POLICE:
            return _deny("only police officers on scene refer disputes")
        if unit.incident_id != incident.id:
            return _deny(f"unit {who.sub} is not assigned to incident {incident.id}")
        return ALLOW
    return _dispatching(who) or ALLOW


def _mediation_scope(who: Principal, target: Target) -> Decision:
    if who.role is Role.MEDIATOR:
        if target.mediation_body is None or target.mediation_body in who.scope:
            return ALLOW
        return _deny(f"mediation body {target.mediation_body} is not in your scope")
    return _dispatching(who) or ALLOW


def _sees_units(who: Principal, target: Target) -> Decision:
    if who.role in (Role.DISPATCHER, Role.OBSERVER):
        return _dispatching(who) or ALLOW
    if who.role is Role.COORDINATOR:
        return ALLOW  # narrowed to the units of summoned incidents by :func:`visible_units`
    if who.role is Role.TERMINAL:
        return ALLOW  # narrowed to its own unit
    return _deny(f"a {who.role.value} reads no units")


def _roster(who: Principal, target: Target) -> Decision:
    if who.role in (Role.DISPATCHER, Role.OBSERVER):
        return _dispatching(who) or ALLOW
    return ALLOW  # a coordinator: narrowed to their agency's duty


def _own_centre(who: Principal, target: Target) -> Decision:
    if denied := _dispatching(who):
        return denied
    if target.centre is None or CENTRE_AGENCY[target.centre] is who.agency:
        return ALLOW
    return _deny(f"a {who.agency.value} dispatcher cannot post for centre {target.centre.value}")


def _own_units(who: Principal, target: Target) -> Decision:
    if denied := _dispatching(who):
        return denied
    foreign = sorted(u.id for u in target.units if u.agency is not who.agency)
    if foreign:
        return _deny(
            f"a {who.agency.value} dispatcher cannot assign another agency's units: "
            + ", ".join(foreign[:10])
        )
    return ALLOW


def _lead(action: str, *, requestable: bool) -> Check:
    def check(who: Principal, target: Target) -> Decision:
        if denied := _dispatching(who):
            return denied
        incident = target.incident
        if incident is None:
            return ALLOW
        lead = lead_agency(incident)
        involved = set(incident.agencies) | ({lead} if lead else set())
        if who.agency is lead or (len(involved) <= 1 and who.agency in involved):
            return ALLOW
        lead_text = lead.value if lead else "none"
        if requestable and who.agency in involved:
            return Decision(
                False, f"only the lead agency ({lead_text}) may {action}; request sent", True
            )
        return _deny(f"only the lead agency ({lead_text}) may {action} incident {incident.id}")

    return check


def _summoned(who: Principal, target: Target) -> Decision:
    for coordinator, agency in target.summons:
        if coordinator == who.sub:
            if agency is who.agency:
                return ALLOW
            return _deny(f"the summons of {who.sub} is for {agency.value}, the token is not")
    return _deny(f"{who.sub} is not summoned by this whistle")


def _unit_owner(who: Principal, target: Target) -> Decision:
    if denied := _dispatching(who):
        return denied
    claimed = {target.unit_agency} if target.unit_agency else set()
    owners = {u.agency for u in target.units} | claimed
    foreign = sorted(a.value for a in owners if a is not who.agency)
    if foreign:
        return _deny(f"a {who.agency.value} dispatcher cannot define {'/'.join(foreign)} units")
    return ALLOW


def _own_roster(who: Principal, target: Target) -> Decision:
    if denied := _dispatching(who):
        return denied
    foreign = sorted(a.value for a in target.roster_agencies if a is not who.agency)
    if foreign:
        return _deny(f"a {who.agency.value} dispatcher cannot set the {'/'.join(foreign)} roster")
    return ALLOW


def _involved(who: Principal, target: Target) -> Decision:
    if denied := _dispatching(who):
        return denied
    incident = target.incident
    if incident is None or who.agency in incident.agencies or who.agency is lead_agency(incident):
        return ALLOW
    return _deny(f"{who.agency.value} is not involved in incident {incident.id}")


def _own_terminal(who: Principal, target: Target) -> Decision:
    unit = target.units[0] if target.units else None
    if unit is None:
        return _deny(f"no unit {who.sub}")
    if unit.id != who.sub:
        return _deny(f"a terminal speaks only for its own unit ({who.sub})")
    if unit.agency is not who.agency:
        return _deny(f"unit {unit.id} is {unit.agency.value}, the token is {who.agency.value}")
    return ALLOW


def _in_scope(who: Principal, target: Target) -> Decision:
    if ALL_INTERSECTIONS in who.scope or target.intersection_id in who.scope:
        return ALLOW
    return _deny(f"intersection {target.intersection_id} is not in your scope")


def _only_admin(who: Principal, target: Target) -> Decision:
    return _deny("only an admin may do this")


_R = Role
MODEL: Mapping[Action, Rule] = {
    Action.READ_INCIDENT: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR, _R.TERMINAL, _R.PROPERTY}),
        "dispatchers and observers: every incident (observers without callers' words); "
        "coordinators: incidents they are summoned to; a terminal: its unit's incident; "
        "property: open incidents of its compounds, of a type on the compound list, while its "
        "team is joined (place, type, time, task only)",
        _sees_incident,
    ),
    Action.READ_SNAPSHOT: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR, _R.TERMINAL, _R.PROPERTY}),
        "as reading incidents, units and whistles, each narrowed to what the role may see",
        _any,
    ),
    Action.READ_UNITS: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR, _R.TERMINAL}),
        "dispatchers and observers: every unit; coordinators: the units of their summoned "
        "incidents; a terminal: its own",
        _sees_units,
    ),
    Action.READ_WHISTLES: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR}),
        "dispatchers and observers: every open whistle; coordinators: those summoning them",
        _sees_units,
    ),
    Action.READ_ROSTER: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR}),
        "dispatchers and observers: every agency's duty; coordinators: their agency's",
        _roster,
    ),
    Action.READ_MAP: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR, _R.TERMINAL, _R.PROPERTY}),
        "the road map, hospitals and stations: every screen (not a signal controller)",
        _any,
    ),
    Action.READ_REPORTS: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR}), "drill reports", _any
    ),
    Action.READ_KPIS: Rule(frozenset({_R.DISPATCHER, _R.OBSERVER}), "the figures", _any),
    Action.READ_DEAD: Rule(
        frozenset({_R.DISPATCHER}),
        "a dispatcher: the dead letters of their own centre's calls (phones masked)",
        _any,
    ),
    Action.POST_CALL: Rule(
        frozenset({_R.DISPATCHER}),
        "a dispatcher of a call-taking centre, for their own centre only",
        _own_centre,
        frozenset({Agency.TRAFFIC, Agency.EMS, Agency.FIRE}),
    ),
    Action.POST_EIDO: Rule(
        frozenset({_R.DISPATCHER}),
        "a dispatcher of a call-taking centre, landing the calls at their own centre",
        _own_centre,
        frozenset({Agency.TRAFFIC, Agency.EMS, Agency.FIRE}),
    ),
    Action.ASSIGN: Rule(
        frozenset({_R.DISPATCHER}),
        "a dispatcher, their own agency's units only (to any open incident)",
        _own_units,
    ),
    Action.SPLIT: Rule(
        frozenset({_R.DISPATCHER}),
        "the lead agency's dispatcher (the only agency's, when one agency works it)",
        _lead("split", requestable=False),
    ),
    Action.CLOSE: Rule(
        frozenset({_R.DISPATCHER}),
        "the lead agency's dispatcher; another involved agency's dispatcher records a close "
        "request for the lead",
        _lead("close", requestable=True),
    ),
    Action.SOUND_WHISTLE: Rule(
        frozenset({_R.DISPATCHER}),
        "a 120 or 119 dispatcher",
        _any,
        frozenset({Agency.EMS, Agency.FIRE}),
    ),
    Action.ENABLE_GREENWAVE: Rule(
        frozenset({_R.DISPATCHER}), "a 122 dispatcher", _any, frozenset({Agency.TRAFFIC})
    ),
    Action.ACK_WHISTLE: Rule(
        frozenset({_R.COORDINATOR}),
        "the summoned coordinator, with a token of the summons' agency",
        _summoned,
    ),
    Action.PUT_UNIT: Rule(
        frozenset({_R.DISPATCHER}),
        "a dispatcher, for units of their own agency (new or existing)",
        _unit_owner,
    ),
    Action.PUT_HOSPITALS: Rule(
        frozenset({_R.DISPATCHER}),
        "a 120 dispatcher (the hospital list)",
        _any,
        frozenset({Agency.EMS}),
    ),
    Action.PUT_ROSTER: Rule(
        frozenset({_R.DISPATCHER}), "a dispatcher, for their own agency's roster", _own_roster
    ),
    Action.PUT_REPORT: Rule(frozenset(), "an admin (drills upload with one)", _only_admin),
    Action.ISSUE_CAP: Rule(
        frozenset({_R.DISPATCHER}), "a dispatcher of an agency involved in the incident", _involved
    ),
    Action.TERMINAL_POSITION: Rule(
        frozenset({_R.TERMINAL}),
        "a terminal, for its own unit (token subject = unit id, of the unit's agency)",
        _own_terminal,
    ),
    Action.TERMINAL_STATUS: Rule(
        frozenset({_R.TERMINAL}), "a terminal, for its own unit", _own_terminal
    ),
    Action.SIGNAL_STATUS: Rule(
        frozenset({_R.SIGNAL}), "a signal controller, for intersections in its scope", _in_scope
    ),
    Action.REVOKE_TOKENS: Rule(frozenset(), "an admin", _only_admin),
    Action.READ_COMPOUNDS: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.PROPERTY}),
        "dispatchers and observers: every compound; property: its own compounds",
        _compound_team,
    ),
    Action.PUT_COMPOUND: Rule(
        frozenset({_R.DISPATCHER}),
        "a police dispatcher (the compounds of the district)",
        _any,
        frozenset({Agency.POLICE}),
    ),
    Action.JOIN_PROPERTY: Rule(
        frozenset({_R.DISPATCHER}),
        "a police dispatcher joins or releases a compound's security team",
        _any,
        frozenset({Agency.POLICE}),
    ),
    Action.REFER: Rule(
        frozenset({_R.DISPATCHER, _R.TERMINAL}),
        "a police dispatcher, or a police officer on scene (the terminal of a unit assigned "
        "to the incident), with the parties' consent",
        _refers,
        frozenset({Agency.POLICE}),
    ),
    Action.READ_REFERRALS: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.MEDIATOR}),
        "dispatchers and observers: every referral; a mediator: its bodies' referrals",
        _mediation_scope,
    ),
    Action.UPDATE_REFERRAL: Rule(
        frozenset({_R.MEDIATOR}),
        "the mediation body the dispute was referred to (token scope = body ids)",
        _mediation_scope,
    ),
    Action.PROPERTY_STATUS: Rule(
        frozenset({_R.PROPERTY}),
        "the joined team of the incident's compound (token scope), while the incident is open",
        _compound_team,
    ),
    Action.READ_PIVOTS: Rule(
        frozenset({_R.DISPATCHER, _R.OBSERVER, _R.COORDINATOR}),
        "the pivot-post plan, the posts standing now and the plans' history",
        _any,
    ),
    Action.PUT_PIVOT_PLAN: Rule(
        frozenset({_R.DISPATCHER}),
        "a police dispatcher puts a pivot-post plan in force",
        _any,
        frozenset({Agency.POLICE}),
    ),
    Action.POST_PIVOT_UNIT: Rule(
        frozenset({_R.DISPATCHER}),
        "a police or traffic-police dispatcher posts or releases their own agency's units",
        _own_units,
        frozenset({Agency.POLICE, Agency.TRAFFIC}),
    ),
}


def decide(who: Principal, action: Action, target: Target | None = None) -> Decision:
    """Whether ``who`` may do ``action`` on ``target`` (admin: always)."""
    if who.role is Role.ADMIN:
        return ALLOW
    admitted = admits(who, action)
    if not admitted.allowed:
        return admitted
    return MODEL[action].check(who, target or Target())


def admits(who: Principal, action: Action) -> Decision:
    """The token-level part of the rule: the role, and for dispatchers the agency."""
    if who.role is Role.ADMIN:
        return ALLOW
    rule = MODEL[action]
    if who.role not in rule.roles:
        return _deny(f"a {who.role.value} may not {action.value.replace('.', ' ')}")
    if rule.agencies is not None and who.agency not in rule.agencies:
        names = "/".join(
            AGENCY_CENTRE[a].value if a in AGENCY_CENTRE else a.value for a in sorted(rule.agencies)
        )
        return _deny(f"only the {names} centre may {action.value.replace('.', ' ')}")
    return _dispatching(who) or ALLOW


def capabilities(who: Principal) -> dict[str, bool]:
    """What a token may ever ask for, action by action (a screen offers only these; each
    object is still checked when the action is asked)."""
    return {a.value: admits(who, a).allowed for a in Action}


def visible_incidents(
    who: Principal,
    incidents: Iterable[Incident],
    *,
    summoned_of: Callable[[Incident], frozenset[str]] = lambda _i: frozenset(),
    compound_of: Callable[[Incident], str | None] = lambda _i: None,
    units: tuple[Unit, ...] = (),
) -> list[Incident]:
    """The incidents ``who`` may read, as they may read them (redacted for observers)."""
    out: list[Incident] = []
    for incident in incidents:
        target = Target(
            incident=incident,
            summoned=summoned_of(incident),
            compound_id=compound_of(incident),
            units=units,
        )
        if decide(who, Action.READ_INCIDENT, target).allowed:
            out.append(redact(who, incident))
    return out


def redact(who: Principal, incident: Incident) -> Incident:
    """The incident as ``who`` may see it: observers get no callers' words or numbers, a
    property team only place, type, time, status and its own task."""
    if who.role is Role.PROPERTY:
        return _compounds.least_view(incident)
    if who.role is not Role.OBSERVER:
        return incident
    return incident.model_copy(update={"calls": [redact_call(c) for c in incident.calls]})


def redact_call(call: CallRecord) -> CallRecord:
    return call.model_copy(update={"description": None, "caller_phone_masked": None})


def redact_event_data(data: Mapping[str, object]) -> dict[str, object]:
    """An event's data as an observer may see it: the callers' words and numbers removed
    from the incident and the call it carries (works on decoded JSON, for the push hub)."""
    out = dict(data)
    incident = out.get("incident")
    if isinstance(incident, dict) and isinstance(incident.get("calls"), list):
        out["incident"] = {
            **incident,
            "calls": [_redact_call_data(c) for c in incident["calls"]],
        }
    call = out.get("call")
    if isinstance(call, dict):
        out["call"] = _redact_call_data(call)
    return out


# What a property team may see of an incident pushed to it (decoded JSON).
PROPERTY_INCIDENT_FIELDS = frozenset(
    {
        "id", "status", "call_types", "lat", "lon", "address", "priority", "created_at",
        "updated_at", "compound_id", "property_join",
    }
)  # fmt: skip


def property_event_data(data: Mapping[str, object]) -> dict[str, object]:
    """An event's data as a property team may see it: the incident's least view, no call."""
    out: dict[str, object] = {}
    incident = data.get("incident")
    if isinstance(incident, dict):
        out["incident"] = {k: v for k, v in incident.items() if k in PROPERTY_INCIDENT_FIELDS}
    for name in ("join", "status", "outcome"):
        if name in data:
            out[name] = data[name]
    return out


def _redact_call_data(call: object) -> object:
    if not isinstance(call, dict):
        return call
    return {**call, "description": None, "caller_phone_masked": None}


def describe() -> list[tuple[str, str, str]]:
    """The model as rows (action, who may ask, condition): the README's table."""
    rows: list[tuple[str, str, str]] = []
    for action, rule in MODEL.items():
        roles = ", ".join(sorted(r.value for r in rule.roles))
        if rule.agencies is not None:
            roles += " (" + ", ".join(sorted(a.value for a in rule.agencies)) + ")"
        rows.append((action.value, f"{roles}; admin" if roles else "admin", rule.condition))
    return rows
