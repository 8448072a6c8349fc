"""Turning stream entries into models and back, with one-line reasons for failures."""

from __future__ import annotations

from collections.abc import Mapping
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
    try:
        return CallEvent.model_validate(fields)
    except ValidationError as exc:
        raise InvalidCallError(validation_reason(exc)) from exc


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
