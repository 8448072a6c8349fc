"""What a dead letter keeps of a refused entry: bounded fields, with size and hash of the cut.

A hostile or broken producer can put a megabyte in one field, or thousands of fields in one
entry; the dead stream must not grow by that much per entry. Each field value is cut to
``field_max_bytes`` and the whole entry to ``entry_max_bytes`` (later fields first get
nothing); every cut field is listed with its original size in bytes and SHA-256, so the
producer's copy can still be matched. At most ``max_fields`` fields are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel


class Cut(BaseModel):
    """A field value that was shortened (or dropped) in a dead letter."""

    bytes: int
    sha256: str
    kept_bytes: int


@dataclass(frozen=True, slots=True)
class DeadLimits:
    field_max_bytes: int = 1024
    entry_max_bytes: int = 8192
    max_fields: int = 64
    # The dead stream's bound: entries kept (approximate MAXLEN), from a byte budget.
    max_bytes: int = 1024**3

    @property
    def maxlen(self) -> int:
        """Entries to keep so the stream stays within about ``max_bytes``."""
        return max(1000, self.max_bytes // self.entry_max_bytes)


def _cut_utf8(value: str, limit: int) -> str:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return value
    return raw[:limit].decode("utf-8", "ignore")


def shrink(fields: Mapping[str, str], limits: DeadLimits) -> tuple[dict[str, str], dict[str, Cut]]:
    """The fields a dead letter keeps, and what was cut from each shortened one.

    Field names are cut to 64 bytes; the fields beyond ``max_fields`` are dropped and
    counted under the name ``"…"`` (their total size, hash of their names and values).
    """
    kept: dict[str, str] = {}
    cuts: dict[str, Cut] = {}
    budget = limits.entry_max_bytes
    dropped = hashlib.sha256()
    dropped_bytes = 0
    for n, (name, value) in enumerate(fields.items()):
        raw = value.encode("utf-8", "surrogatepass")
        if n >= limits.max_fields:
            dropped.update(name.encode("utf-8", "surrogatepass") + b"\0" + raw + b"\0")
            dropped_bytes += len(raw)
            continue
        key = _cut_utf8(name, 64)
        room = max(0, min(limits.field_max_bytes, budget))
        short = _cut_utf8(value, room)
        size = len(short.encode("utf-8", "surrogatepass"))
        budget -= size
        kept[key] = short
        if size < len(raw):
            cuts[key] = Cut(bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest(), kept_bytes=size)
    if dropped_bytes or len(fields) > limits.max_fields:
        cuts["…"] = Cut(bytes=dropped_bytes, sha256=dropped.hexdigest(), kept_bytes=0)
    return kept, cuts
