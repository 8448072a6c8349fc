"""Turning stream entries into models and back, with one-line reasons for failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from dispatch.errors import InvalidCallError
from dispatch.models import CALL_SCHEMA_VERSION, CallEvent

# A hostile producer can send anything; cap what we even try to parse.
MAX_FIELD_BYTES = 16_384
MAX_FIELDS = 32


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCallError(f"field is not UTF-8: {exc.reason}") from exc
    return value


def decode_fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """Decode a stream entry's fields to text, keeping undecodable bytes visible.

    Used for dead letters, where the original must survive even when it is not UTF-8.
    """
    out: dict[str, str] = {}
    for key, value in raw.items():
        k = key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key
        v = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
        out[k] = v
    return out


def validation_reason(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it (no input values echoed)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "entry"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def call_from_fields(raw: Mapping[Any, Any]) -> CallEvent:
    """Parse a ``yishao:calls`` entry.

    Args:
        raw: the entry's field/value pairs as redis-py returns them.

    Returns:
        The validated call.

    Raises:
        InvalidCallError: with a reason fit for the dead-letter stream.
    """
    if len(raw) > MAX_FIELDS:
        raise InvalidCallError(f"entry has {len(raw)} fields, at most {MAX_FIELDS} allowed")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        name = _text(key)
        text = _text(value)
        if len(text) > MAX_FIELD_BYTES:
            raise InvalidCallError(f"{name}: longer than {MAX_FIELD_BYTES} characters")
        fields[name] = text
    version = fields.pop("schema_version", str(CALL_SCHEMA_VERSION))
    if version != str(CALL_SCHEMA_VERSION):
        raise InvalidCallError(
            f"schema_version: {version!r} is not supported"
            f" (this service reads {CALL_SCHEMA_VERSION})"
        )
    # Stream fields are text; the model's numbers are strict (a JSON client must send
    # numbers), so the numeric fields are read here, each failure naming its field.
    for name, convert in (("lat", float), ("lon", float), ("severity", int)):
        if name in fields and fields[name] != "":
            try:
                fields[name] = convert(fields[name])
            except ValueError as exc:
                raise InvalidCallError(f"{name}: not a number") from exc
    if "exercise" in fields:
        flag = fields["exercise"].lower()
        if flag not in ("true", "false"):
            raise InvalidCallError("exercise: must be true or false")
        fields["exercise"] = flag == "true"
    try:
        return CallEvent.model_validate(fields)
    except ValidationError as exc:
        raise InvalidCallError(validation_reason(exc)) from exc


# Redis keeps places in a geo index; it refuses latitudes beyond this (Web Mercator's edge).
GEO_MAX_LAT = 85.05112878
BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What a live call must be beyond its schema: now, and here.

    ``area`` is the service area ``(west, south, east, north)`` (None: anywhere Redis can
    index); a call received more than ``max_age_s`` ago or more than ``max_ahead_s`` in the
    future (clock skew) is not a live call.
    """

    area: BBox | None = None
    max_age_s: float = 7 * 86_400.0
    max_ahead_s: float = 300.0

    def check(self, call: CallEvent, now: datetime) -> None:
        """Raises InvalidCallError naming the field (never echoing the value)."""
        if abs(call.lat) > GEO_MAX_LAT:
            raise InvalidCallError(f"lat: beyond +/-{GEO_MAX_LAT} (not a place on the map)")
        if self.area is not None:
            west, south, east, north = self.area
            if not (south <= call.lat <= north and west <= call.lon <= east):
                raise InvalidCallError(
                    "lat/lon: outside the service area "
                    f"[{west:.3f}, {south:.3f}, {east:.3f}, {north:.3f}]"
                )
        age_s = (now - call.received_at).total_seconds()
        if age_s > self.max_age_s:
            raise InvalidCallError(f"received_at: more than {self.max_age_s:.0f} s ago")
        if -age_s > self.max_ahead_s:
            raise InvalidCallError(f"received_at: more than {self.max_ahead_s:.0f} s ahead")


def parse_area(text: str) -> BBox | None:
    """``"west,south,east,north"`` in degrees (empty: None).

    Raises:
        ValueError: not four numbers in that order.
    """
    if not text.strip():
        return None
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError("the service area is west,south,east,north")
    west, south, east, north = parts
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ValueError("the service area is west,south,east,north with west<east, south<north")
    return west, south, east, north


def dumps(value: Any) -> str:
    """Compact JSON text (pydantic models, datetimes and enums included)."""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return orjson.dumps(value, default=_default).decode()


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot encode {type(value).__name__}")


def loads(text: bytes | str) -> Any:
    return orjson.loads(text)
