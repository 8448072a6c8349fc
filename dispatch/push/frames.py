"""The wire form of pushed messages: server frames, and event-log entries decoded once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from dispatch.core.audience import StreamKey, stream_key
from dispatch.core.policy import property_event_data, redact_event_data

log = logging.getLogger(__name__)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def frame(type: str, data: Any = None, *, id: str | None = None, ts: str | None = None) -> str:
    """One server message ``{type, id, ts, data}`` as JSON text (``id`` null unless an event's)."""
    return orjson.dumps(
        {"type": type, "id": id, "ts": ts or now_iso(), "data": {} if data is None else data},
        default=_default,
    ).decode()


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot encode {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Decoded:
    """An event-log entry decoded once: its facts for the filters and its text for the wire."""

    id: str
    key: StreamKey
    type: str
    incident_id: str | None
    data: Mapping[str, Any]
    text: str


def decode_entry(entry_id: bytes | str, raw: Mapping[bytes, bytes]) -> Decoded:
    """Decode an entry and serialise its envelope once (``data`` embedded as stored)."""
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    f = {k.decode(): v.decode() for k, v in raw.items()}
    raw_data = f.get("data", "{}")
    try:
        data = orjson.loads(raw_data)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        log.warning("event %s has undecodable data; pushed with data {}", eid)
        data, raw_data = {}, "{}"
    incident_id = f.get("incident_id") or None
    text = orjson.dumps(
        {
            "type": f.get("type", ""),
            "id": eid,
            "ts": f.get("ts", ""),
            "incident_id": incident_id,
            "actor": f.get("actor", ""),
            "data": orjson.Fragment(raw_data),
        }
    ).decode()
    return Decoded(eid, stream_key(eid), f.get("type", ""), incident_id, data, text)


def least_data(d: Decoded) -> str:
    """The event's envelope with its data as a property team may see it (least view)."""
    envelope = orjson.loads(d.text)
    envelope["data"] = property_event_data(d.data)
    return orjson.dumps(envelope).decode()


def redacted(d: Decoded) -> str:
    """The event's envelope with its data as an observer may see it (callers' words out)."""
    envelope = orjson.loads(d.text)
    envelope["data"] = redact_event_data(d.data)
    return orjson.dumps(envelope).decode()
