"""Incident history, the planner's input: one record type, CSV/JSON import with a per-row report.

A history file is CSV (a header row, then one incident per row) or JSON (a list of objects, or
``{"records": [...]}``), with the fields of :class:`HistoryRecord`:

``id``, ``call_type`` (a :class:`dispatch.models.CallType` value, e.g. ``fight``), ``lat``,
``lon``, ``occurred_at`` (ISO 8601 with a UTC offset), ``outcome`` (an :class:`Outcome`
value), optional ``area`` (town or police area) and ``synthetic`` (``true``/``false``).

Nothing is dropped silently. Every refused row is reported with its row number (the CSV line
number, or the 1-based position in the JSON list) and the field at fault. By default a file
with any refused row is refused whole (:class:`HistoryImportError`); ``keep_good=True`` keeps
the good rows and the report still lists every refused one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dispatch.models import CallType

FIELDS: tuple[str, ...] = (
    "id",
    "call_type",
    "lat",
    "lon",
    "occurred_at",
    "outcome",
    "area",
    "synthetic",
)
REQUIRED: frozenset[str] = frozenset({"id", "call_type", "lat", "lon", "occurred_at", "outcome"})


class Outcome(StrEnum):
    """How an incident ended, as far as the planner cares (on-the-spot resolution is the seed's
    measure of a post's effect)."""

    RESOLVED_ON_SCENE = "resolved_on_scene"
    RESOLVED_LATER = "resolved_later"
    REFERRED = "referred"
    NO_ACTION = "no_action"
    UNKNOWN = "unknown"


class HistoryRecord(BaseModel):
    """One past incident."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=128)
    call_type: CallType
    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False)
    occurred_at: datetime = Field(description="local time with its UTC offset")
    outcome: Outcome
    area: str | None = Field(default=None, max_length=200)
    synthetic: bool = Field(default=False, description="generated, not a real incident")

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset (ISO 8601, e.g. 2026-07-19T21:15:00+08:00)")
        return value

    @field_validator("area", mode="before")
    @classmethod
    def _blank_area(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class RowError(BaseModel):
    """One refused row: where it is and which field is wrong."""

    model_config = ConfigDict(frozen=True)

    row: int = Field(description="CSV line number (header is line 1) or 1-based JSON position")
    field: str = Field(description="the field at fault, or '(row)' for the row as a whole")
    message: str
    record_id: str | None = None

    def __str__(self) -> str:
        rid = f" (id {self.record_id})" if self.record_id else ""
        return f"row {self.row}{rid}, field {self.field!r}: {self.message}"


class ImportReport(BaseModel):
    """What an import accepted and refused."""

    source: str
    format: Literal["csv", "json"]
    rows: int = Field(description="rows read (accepted + refused)")
    accepted: int
    refused: int
    errors: list[RowError] = Field(default_factory=list)
    kept_good_rows: bool = Field(description="True: refused rows were left out, the rest kept")
    synthetic: int = Field(default=0, description="accepted rows marked synthetic")

    def summary(self) -> str:
        """One line for a terminal."""
        return (
            f"{self.source}: {self.rows} rows, {self.accepted} accepted, {self.refused} refused"
            + (f" ({self.synthetic} synthetic)" if self.synthetic else "")
        )


class HistoryImportError(ValueError):
    """A history file refused; ``report`` lists every bad row (or the file-level problem)."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def _row_errors(row: int, exc: ValidationError, record_id: str | None) -> list[RowError]:
    out: list[RowError] = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else "(row)"
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "enum" and field in ("call_type", "outcome"):
            allowed = CallType if field == "call_type" else Outcome
            message = f"{err['input']!r} is not one of: " + ", ".join(v.value for v in allowed)
        else:
            message = str(err.get("msg", "invalid"))
        out.append(RowError(row=row, field=field, message=message, record_id=record_id))
    return out


def parse_rows(
    rows: Iterable[tuple[int, Any]],
    *,
    source: str,
    fmt: Literal["csv", "json"],
    keep_good: bool = False,
) -> tuple[list[HistoryRecord], ImportReport]:
    """Validate ``(row number, fields)`` pairs into records.

    Args:
        rows: each row's number (as the report should name it) and its fields (anything
            but a dict is refused as a whole row).
        source: the file's name, for the report.
        fmt: ``csv`` or ``json``.
        keep_good: keep the good rows when some are refused (else refuse them all).

    Returns:
        The accepted records, and the report.

    Raises:
        HistoryImportError: a row was refused and ``keep_good`` is False.
    """
    records: list[HistoryRecord] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    count = 0
    for row, fields in rows:
        count += 1
        if not isinstance(fields, dict):
            kind = type(fields).__name__
            errors.append(
                RowError(
                    row=row, field="(row)", message=f"expected an object of fields, got {kind}"
                )
            )
            continue
        raw_id = fields.get("id")
        rid = str(raw_id).strip() if raw_id not in (None, "") else None
        try:
            record = HistoryRecord.model_validate(fields)
        except ValidationError as exc:
            errors.extend(_row_errors(row, exc, rid))
            continue
        if record.id in seen:
            errors.append(
                RowError(
                    row=row,
                    field="id",
                    message=f"duplicate id, first seen at row {seen[record.id]}",
                    record_id=record.id,
                )
            )
            continue
        seen[record.id] = row
        records.append(record)
    refused_rows = len({e.row for e in errors})
    report = ImportReport(
        source=source,
        format=fmt,
        rows=count,
        accepted=len(records),
        refused=refused_rows,
        errors=errors,
        kept_good_rows=keep_good,
        synthetic=sum(1 for r in records if r.synthetic),
    )
    if errors and not keep_good:
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise HistoryImportError(
            f"{source}: {refused_rows} of {count} rows refused, file not imported "
            f"(keep the good rows with keep_good / --keep-good): {shown}{more}",
            report,
        )
    return records, report


def _csv_rows(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames
    if not header:
        raise HistoryImportError(
            f"{source}: empty file, expected a header row ({', '.join(FIELDS)})"
        )
    names = [h.strip() for h in header]
    missing = sorted(REQUIRED - set(names))
    unknown = [h for h in names if h not in FIELDS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing column(s) " + ", ".join(missing))
        if unknown:
            parts.append("unknown column(s) " + ", ".join(unknown))
        raise HistoryImportError(
            f"{source}: header row: {'; '.join(parts)} (columns: {', '.join(FIELDS)})"
        )
    out: list[tuple[int, dict[str, Any]]] = []
    for raw in reader:
        line = reader.line_num
        extra = raw.pop(None, None)
        fields: dict[str, Any] = {
            k.strip(): v for k, v in raw.items() if v is not None and not (k != "area" and v == "")
        }
        if extra:
            fields["(extra cells)"] = extra
        out.append((line, fields))
    return out


def _json_rows(text: str, source: str) -> list[tuple[int, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryImportError(
            f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if isinstance(doc, dict) and "records" in doc:
        doc = doc["records"]
    if not isinstance(doc, list):
        raise HistoryImportError(f'{source}: expected a list of records or {{"records": [...]}}')
    out: list[tuple[int, Any]] = []
    for pos, item in enumerate(doc, start=1):
        out.append((pos, item))
    return out


def load_history(
    path: str | Path, *, keep_good: bool = False
) -> tuple[list[HistoryRecord], ImportReport]:
    """Import a history file (``.csv``, or ``.json``).

    Args:
        path: the file; the format follows the suffix.
        keep_good: keep the good rows when some are refused.

    Returns:
        The records and the import report.

    Raises:
        HistoryImportError: the file cannot be read, has a bad header, or (without
            ``keep_good``) has any refused row; the message names the rows and fields.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise HistoryImportError(f"{source}: unknown format {suffix!r} (use .csv or .json)")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryImportError(f"{source}: cannot read: {exc}") from exc
    if suffix == ".csv":
        return parse_rows(
            _csv_rows(text, source.name), source=source.name, fmt="csv", keep_good=keep_good
        )
    return parse_rows(
        _json_rows(text, source.name), source=source.name, fmt="json", keep_good=keep_good
    )


def dump_history(records: Sequence[HistoryRecord], path: str | Path) -> Path:
    """Write records as CSV or JSON (by suffix) in the format :func:`load_history` reads."""
    target = Path(path)
    if target.suffix.lower() == ".json":
        rows = [r.model_dump(mode="json") for r in records]
        target.write_text(json.dumps({"records": rows}, ensure_ascii=False), encoding="utf-8")
        return target
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FIELDS))
        writer.writeheader()
        for r in records:
            row = r.model_dump(mode="json")
            row["synthetic"] = "true" if r.synthetic else "false"
            row["area"] = r.area or ""
            writer.writerow(row)
    return target
