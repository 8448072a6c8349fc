"""Response plans: which agencies and units a call type needs, whistle eligibility, priority.

The table lives in ``plans.toml`` (packaged) or an override file (``YISHAO_PLANS``). Rows are
keyed by call type and a severity threshold; see the comment at the top of ``plans.toml`` for
how rows combine. Loading is the only I/O here; everything else is pure.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.errors import ConfigError
from dispatch.models import Agency, CallEvent, CallType, Incident, UnitNeed, UnitType

# Which agency fields each unit type. A row pairing a unit type with another agency is almost
# always a typo (ambulance under "fire"), so loading refuses it rather than ranking nothing.
UNIT_AGENCY: Mapping[UnitType, Agency] = {
    UnitType.PATROL_CAR: Agency.POLICE,
    UnitType.MEDIATOR: Agency.POLICE,
    UnitType.TRAFFIC_POLICE_CAR: Agency.TRAFFIC,
    UnitType.AMBULANCE: Agency.EMS,
    UnitType.FIRE_ENGINE: Agency.FIRE,
    UnitType.FIRE_RESCUE: Agency.FIRE,
    UnitType.LADDER: Agency.FIRE,
    UnitType.PROPERTY_SECURITY: Agency.PROPERTY,
}

DEFAULT_PLANS_RESOURCE = "plans.toml"


class PlanError(ConfigError, ValueError):
    """A plan file that does not load: the message names the file and the row."""


class ResponsePlan(BaseModel):
    """What to send to an incident of these call types.

    ``agencies`` are sorted and unique; ``needs`` are sorted by agency then unit type, one per
    pair; ``priority`` is 1 (most urgent) .. 5.
    """

    model_config = ConfigDict(frozen=True)

    call_types: tuple[CallType, ...]
    agencies: tuple[Agency, ...]
    needs: tuple[UnitNeed, ...]
    whistle: bool
    priority: int = Field(ge=1, le=5)


class _Need(BaseModel):
    """One entry of a row's ``needs``; strict so a misspelt key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: Agency
    unit_type: UnitType
    count: int = Field(1, ge=1, le=20)

    def to_need(self) -> UnitNeed:
        return UnitNeed(agency=self.agency, unit_type=self.unit_type, count=self.count)


class _Row(BaseModel):
    """One ``[[plan]]`` row as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_type: CallType
    min_severity: int = Field(1, ge=1, le=5)
    # Optional on threshold rows: absent means "no change" from the rows below.
    priority: int | None = Field(None, ge=1, le=5)
    whistle: bool | None = None
    needs: tuple[_Need, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanTable:
    """The loaded plan table: rows per call type, ascending by ``min_severity``.

    Build it with :meth:`load` or :meth:`from_dict`; both validate the whole table.
    """

    rows: Mapping[CallType, tuple[_Row, ...]]
    source: str

    @classmethod
    def load(cls, path: Path | None = None) -> PlanTable:
        """Read and validate a plan table.

        Args:
            path: an override TOML file; ``None`` reads the packaged ``plans.toml``.

        Returns:
            The validated table.

        Raises:
            PlanError: unreadable TOML, unknown call type / unit type / agency / key, a unit
                type under the wrong agency, a duplicate row, or a call type without a base row.
        """
        if path is None:
            source = f"dispatch/core/{DEFAULT_PLANS_RESOURCE}"
            text = (
                resources.files("dispatch.core").joinpath(DEFAULT_PLANS_RESOURCE).read_text("utf-8")
            )
        else:
            source = str(path)
            try:
                text = path.read_text("utf-8")
            except OSError as exc:
                raise PlanError(f"{source}: cannot read plan file: {exc}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PlanError(f"{source}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> PlanTable:
        """Validate an already-parsed table (``{"plan": [row, ...]}``).

        Args:
            data: the parsed TOML document.
            source: the name used in error messages.

        Returns:
            The validated table.

        Raises:
            PlanError: as for :meth:`load`.
        """
        extra = set(data) - {"plan"}
        if extra:
            raise PlanError(
                f"{source}: unknown top-level key(s) {sorted(extra)}; expected [[plan]]"
            )
        raw_rows = data.get("plan")
        if not isinstance(raw_rows, list) or not raw_rows:
            raise PlanError(f"{source}: no [[plan]] rows")
        by_type: dict[CallType, dict[int, _Row]] = {}
        for index, raw in enumerate(raw_rows):
            row = _parse_row(raw, source=source, index=index)
            where = f"{source}: [[plan]] row {index + 1} ({row.call_type.value}"
            where += f", min_severity {row.min_severity})"
            if row.min_severity == 1 and (row.priority is None or row.whistle is None):
                raise PlanError(f"{where}: a base row must set priority and whistle")
            if row.min_severity == 1 and not row.needs:
                raise PlanError(f"{where}: a base row must need at least one unit")
            for need in row.needs:
                owner = UNIT_AGENCY[need.unit_type]
                if need.agency != owner:
                    raise PlanError(
                        f"{where}: unit type {need.unit_type.value} belongs to agency "
                        f"{owner.value}, not {need.agency.value}"
                    )
            pairs = [(n.agency, n.unit_type) for n in row.needs]
            if len(set(pairs)) != len(pairs):
                raise PlanError(f"{where}: the same agency and unit type listed twice")
            tiers = by_type.setdefault(row.call_type, {})
            if row.min_severity in tiers:
                raise PlanError(f"{where}: duplicate row for this call type and severity")
            tiers[row.min_severity] = row
        missing = [ct.value for ct in CallType if 1 not in by_type.get(ct, {})]
        if missing:
            raise PlanError(f"{source}: no base row (min_severity 1) for call type(s) {missing}")
        rows = {ct: tuple(tiers[s] for s in sorted(tiers)) for ct, tiers in by_type.items()}
        return cls(rows=rows, source=source)

    def for_call(self, call: CallEvent, incident: Incident | None = None) -> ResponsePlan:
        """The plan of an incident after ``call`` joins it (or opens it, without ``incident``).

        A merged incident is planned for every call type it has been reported as, at the
        highest severity any call gave: the 120 caller's "not breathing" raises what the 122
        caller's "minor crash" asked for.
        """
        if incident is None:
            return self.plan_for([call.call_type], call.severity)
        severities = [s for s in (incident.severity, call.severity) if s is not None]
        return self.plan_for(
            [*incident.call_types, call.call_type], max(severities) if severities else None
        )

    def plan_for(self, call_types: Iterable[CallType], severity: int | None) -> ResponsePlan:
        """The combined plan for an incident reported as these call types.

        Args:
            call_types: the incident's call types (order and repeats do not matter).
            severity: the incident's severity 1..5, or ``None`` when unknown (base rows only).

        Returns:
            Union of needs (largest count per agency and unit type), whistle if any row allows
            it, the most urgent (smallest) priority.

        Raises:
            ValueError: no call types, or severity outside 1..5.
        """
        types = sorted(set(call_types))
        if not types:
            raise ValueError("plan_for needs at least one call type")
        if severity is not None and not 1 <= severity <= 5:
            raise ValueError(f"severity must be 1..5 or None, not {severity}")
        level = 1 if severity is None else severity
        counts: dict[tuple[Agency, UnitType], int] = {}
        whistle = False
        priority = 5
        for call_type in types:
            for row in self.rows[call_type]:
                if row.min_severity > level:
                    break
                whistle = whistle or bool(row.whistle)
                if row.priority is not None:
                    priority = min(priority, row.priority)
                for need in row.needs:
                    pair = (need.agency, need.unit_type)
                    counts[pair] = max(counts.get(pair, 0), need.count)
        needs = tuple(
            UnitNeed(agency=a, unit_type=u, count=n) for (a, u), n in sorted(counts.items())
        )
        return ResponsePlan(
            call_types=tuple(types),
            agencies=tuple(sorted({a for a, _ in counts})),
            needs=needs,
            whistle=whistle,
            priority=priority,
        )


def _parse_row(raw: Any, *, source: str, index: int) -> _Row:
    if not isinstance(raw, Mapping):
        raise PlanError(f"{source}: [[plan]] row {index + 1} is not a table")
    try:
        return _Row.model_validate(raw)
    except ValidationError as exc:
        label = raw.get("call_type", "?")
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise PlanError(f"{source}: [[plan]] row {index + 1} ({label}): {problems}") from exc


def _describe(err: Mapping[str, Any]) -> str:
    loc: Sequence[Any] = err.get("loc", ())
    path = ".".join(str(part) for part in loc) or "row"
    return f"{path}: {err.get('msg', 'invalid')} (got {err.get('input')!r})"
