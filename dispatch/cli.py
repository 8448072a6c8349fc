"""The service's commands: serve, tokens, schemas, calls, fleet, hospitals, rosters.

Mounted with the routing and drill commands by the top-level ``yishao`` command
(:mod:`yishao.cli`); every heavy import happens inside the command that needs it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dispatch import __version__
from dispatch.errors import ConfigError
from dispatch.settings import Settings

if TYPE_CHECKING:
    from dispatch.flow.fleet import Fleet
    from dispatch.records.db import Conn

T = TypeVar("T")

app = typer.Typer(
    name="yishao",
    help="Yishao (一哨群应): joint 122/120/119 emergency dispatch with green-wave signal priority.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="Mint and check access tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _settings() -> Settings:
    """Settings from the environment, or a clear error and exit code 2."""
    try:
        return Settings()
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every HTTP request.")
    ] = True,
) -> None:
    """Run the service (HTTP API, websockets, call intake) with uvicorn.

    Settings come from YISHAO_* environment variables (YISHAO_REDIS_URL, YISHAO_SECRET,
    YISHAO_GRAPH, ...). Start several on different ports against one Redis to scale out.
    """
    import uvicorn

    from dispatch.api import create_app
    from dispatch.logs import configure, quiet_sockets

    configure(log_level.upper())
    settings = _settings()
    if settings.graph is not None and not settings.graph.is_file():
        # Say it once and stop (non-zero), rather than crash in start-up under a restart loop.
        typer.secho(
            f"error: YISHAO_GRAPH={settings.graph}: no such file; build it with `yishao graph "
            "build --osm FILE --out PATH` (or --place NAME, online), or unset YISHAO_GRAPH to "
            "serve without routes",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    if not access_log:
        quiet_sockets()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        ws_ping_interval=10,
        ws_ping_timeout=10,
        # Each event is serialised once for every screen; per-client compression would
        # redo the work per socket (and browsers on a LAN gain little from it).
        ws_per_message_deflate=False,
    )


@app.command("settings")
def settings_cmd() -> None:
    """Print every YISHAO_* setting with its default and meaning (the README's table)."""
    from dispatch.settings import settings_table

    typer.echo(settings_table())


@token_app.command("mint")
def token_mint(
    role: Annotated[
        str,
        typer.Option(help="dispatcher, coordinator, terminal, signal, property, observer, admin."),
    ],
    agency: Annotated[str, typer.Option(help="police, traffic, ems, fire, property.")],
    sub: Annotated[str, typer.Option(help="Subject: a person, unit or controller id.")],
    ttl_s: Annotated[
        int | None, typer.Option(help="Lifetime in seconds (default YISHAO_TOKEN_TTL_S, 12 h).")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="Scope item (intersection, compound, unit); repeatable."),
    ] = None,
) -> None:
    """Mint a bearer token signed with YISHAO_SECRET."""
    from dispatch.auth import mint
    from dispatch.models import Agency, Role

    settings = _settings()
    try:
        r, a = Role(role), Agency(agency)
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    ttl = settings.token_ttl_s if ttl_s is None else ttl_s
    typer.echo(mint(settings.secret, role=r, agency=a, sub=sub, ttl_s=ttl, scope=scope or ()))


@token_app.command("check")
def token_check(token: Annotated[str, typer.Argument(help="The token to verify.")]) -> None:
    """Verify a token with YISHAO_SECRET and print its claims as JSON."""
    from dispatch.auth import verify
    from dispatch.errors import AuthError

    settings = _settings()
    try:
        who = verify(settings.secret, token)
    except AuthError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(who.model_dump_json(indent=2))


@app.command()
def schema(
    name: Annotated[
        str,
        typer.Argument(
            help="Which message: call, incident, ..., events, eido, cap, j2735 or 'list'."
        ),
    ],
) -> None:
    """Print the JSON Schema of a public message; ``events``: every event payload by type;
    or a standard's own schema (eido: JSON Schema, cap: XSD, j2735: ASN.1; read from
    YISHAO_STANDARDS_DIR)."""
    from dispatch.events import payload_schemas
    from dispatch.interop.errors import StandardsMissingError
    from dispatch.interop.schemas import STANDARD_SCHEMAS, published_schema, resolve_standards_dir
    from dispatch.models import SCHEMAS

    if name == "list":
        typer.echo("\n".join(sorted([*SCHEMAS, *STANDARD_SCHEMAS, "events"])))
        return
    if name == "events":
        typer.echo(json.dumps(payload_schemas(), indent=2, ensure_ascii=False))
        return
    if name in STANDARD_SCHEMAS:
        try:
            typer.echo(published_schema(name, resolve_standards_dir()))
        except StandardsMissingError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc
        return
    model = SCHEMAS.get(name)
    if model is None:
        known = ", ".join(sorted([*SCHEMAS, *STANDARD_SCHEMAS, "events"]))
        typer.secho(f"error: unknown schema {name!r}; one of: {known}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))


@app.command("policy")
def policy_table() -> None:
    """Print the authorization model (who may do what) as the README's markdown table."""
    from dispatch.core.policy import describe

    typer.echo("| action | who may ask | condition on the object |")
    typer.echo("|---|---|---|")
    for action, who, condition in describe():
        typer.echo(f"| `{action}` | {who} | {condition} |")


@app.command("call")
def call_send(
    file: Annotated[
        Path, typer.Argument(help="JSON file with one call or a list of calls; '-' for stdin.")
    ],
) -> None:
    """Validate calls and add them to the intake stream (as a call-taking system would)."""
    import asyncio

    from pydantic import ValidationError

    from dispatch.codec import validation_reason
    from dispatch.constants import Keys
    from dispatch.infra.connect import open_redis
    from dispatch.infra.store import Store
    from dispatch.models import CallEvent

    settings = _settings()
    data = _read_json(file)
    items = data if isinstance(data, list) else [data]
    calls = []
    for n, item in enumerate(items):
        try:
            calls.append(CallEvent.model_validate(item))
        except ValidationError as exc:
            typer.secho(f"error: call {n}: {validation_reason(exc)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    async def send() -> list[str]:
        redis = open_redis(settings)
        try:
            store = Store(redis, Keys(settings.namespace))
            return [await store.add_call(call) for call in calls]
        finally:
            await redis.aclose()

    for sid in asyncio.run(send()):
        typer.echo(sid)


fleet_app = typer.Typer(help="Units of the fleet.", no_args_is_help=True)
hospitals_app = typer.Typer(help="Destination hospitals for ambulances.", no_args_is_help=True)
roster_app = typer.Typer(help="Duty rosters of the whistle coordinators.", no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")
app.add_typer(hospitals_app, name="hospitals")
app.add_typer(roster_app, name="roster")


def _read_json(file: Path) -> Any:
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        typer.secho(f"error: {file}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def _with_fleet(work: Callable[[Fleet], Awaitable[T]]) -> T:
    """Run ``work`` against the configured Redis with a Fleet adapter."""
    import asyncio
    from datetime import UTC, datetime

    from dispatch.constants import Keys
    from dispatch.flow.fleet import Fleet
    from dispatch.infra.connect import open_redis
    from dispatch.infra.store import Store

    settings = _settings()

    async def go() -> T:
        redis = open_redis(settings)
        try:
            fleet = Fleet(Store(redis, Keys(settings.namespace)), clock=lambda: datetime.now(UTC))
            return await work(fleet)
        finally:
            await redis.aclose()

    return asyncio.run(go())


@fleet_app.command("load")
def fleet_load(
    file: Annotated[
        Path, typer.Argument(help="JSON list of units: id, agency, type, lat, lon, station?")
    ],
) -> None:
    """Load (create or redefine) units from a fleet file."""
    from dispatch.flow.fleet import parse_fleet

    try:
        units = parse_fleet(_read_json(file))
    except ValueError as exc:
        typer.secho(f"error: {file}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc

    async def load(fleet: Fleet) -> int:
        for unit in units:
            await fleet.put_unit(unit, actor="cli:fleet-load")
        return len(units)

    typer.echo(f"loaded {_with_fleet(load)} units")


@fleet_app.command("list")
def fleet_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List units with status and last position."""

    async def units(fleet: Fleet) -> list[Any]:
        return list(await fleet.units())

    found = _with_fleet(units)
    if as_json:
        typer.echo(json.dumps([u.model_dump(mode="json") for u in found], ensure_ascii=False))
        return
    for u in found:
        typer.echo(f"{u.id:12} {u.agency.value:8} {u.type.value:18} {u.status.value}")


@hospitals_app.command("load")
def hospitals_load(
    file: Annotated[Path, typer.Argument(help="JSON list: id, name, lat, lon, accepting?")],
) -> None:
    """Load (create or replace) hospitals from a file."""
    from dispatch.flow.fleet import parse_hospitals

    try:
        hospitals = parse_hospitals(_read_json(file))
    except ValueError as exc:
        typer.secho(f"error: {file}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc

    async def load(fleet: Fleet) -> int:
        await fleet.put_hospitals(hospitals, actor="cli:hospitals-load")
        return len(hospitals)

    typer.echo(f"loaded {_with_fleet(load)} hospitals")


@roster_app.command("load")
def roster_load(
    file: Annotated[
        Path,
        typer.Argument(help="JSON: a list of {date, agency, primary, backup}, or {entries, rules}"),
    ],
) -> None:
    """Load roster entries and daily rotation rules."""
    from dispatch.core.rosters import RosterError, parse_roster_file

    try:
        entries, rules = parse_roster_file(_read_json(file))
    except RosterError as exc:
        typer.secho(f"error: {file}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc

    async def load(fleet: Fleet) -> None:
        await fleet.put_roster(entries, rules, actor="cli:roster-load")

    _with_fleet(load)
    typer.echo(f"loaded {len(entries)} entries and {len(rules)} rules")


@roster_app.command("today")
def roster_today(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show today's on-duty coordinators (duty day changes at 08:00 Asia/Shanghai)."""

    async def duty(fleet: Fleet) -> tuple[Any, Any]:
        return await fleet.duty()

    day, on = _with_fleet(duty)
    if as_json:
        duties = [d.model_dump(mode="json") for d in on.values()]
        typer.echo(json.dumps({"day": day.isoformat(), "duty": duties}))
        return
    typer.echo(f"duty day {day}")
    for d in on.values():
        typer.echo(f"  {d.agency.value:8} primary {d.primary:20} backup {d.backup or '-'}")


compounds_app = typer.Typer(
    help="Residential compounds and their property teams.", no_args_is_help=True
)
app.add_typer(compounds_app, name="compounds")


@compounds_app.command("load")
def compounds_load(
    file: Annotated[
        Path,
        typer.Argument(
            help="GeoJSON FeatureCollection of (multi)polygons; properties: id, name, company?, "
            "contact?, members?, gates?"
        ),
    ],
) -> None:
    """Load (create or replace) compounds from a GeoJSON file."""
    import asyncio
    from datetime import UTC, datetime

    from dispatch.constants import Keys
    from dispatch.core.compounds import CompoundError, parse_feature_collection
    from dispatch.flow.compounds import CompoundBook
    from dispatch.infra.connect import open_redis
    from dispatch.infra.store import Store

    try:
        compounds = parse_feature_collection(_read_json(file))
    except CompoundError as exc:
        typer.secho(f"error: {file}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    settings = _settings()

    async def go() -> int:
        redis = open_redis(settings)
        try:
            book = CompoundBook(
                Store(redis, Keys(settings.namespace)), clock=lambda: datetime.now(UTC)
            )
            return await book.put(compounds, actor="cli:compounds-load", source="load")
        finally:
            await redis.aclose()

    typer.echo(f"loaded {asyncio.run(go())} compounds")


db_app = typer.Typer(help="The system of record in PostgreSQL (YISHAO_DATABASE_URL).")
audit_app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)
app.add_typer(db_app, name="db", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _database_url() -> str:
    settings = _settings()
    if not settings.database_url:
        typer.secho("error: set YISHAO_DATABASE_URL", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    return settings.database_url


def _records_failed(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _on_record(url: str, work: Callable[[Conn], Awaitable[T]]) -> T:
    """Run ``work`` on one connection to the record; a PostgreSQL failure is one line, exit 1."""
    import asyncio

    from dispatch.records.db import RecordsError, connection

    async def go() -> T:
        async with connection(url) as conn:
            return await work(conn)

    try:
        return asyncio.run(go())
    except RecordsError as exc:
        raise _records_failed(exc) from exc


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create the database if missing, then apply the migrations up to REVISION."""
    import asyncio

    from dispatch.records import db
    from dispatch.records.db import RecordsError

    url = _database_url()
    try:
        if asyncio.run(db.ensure_database(url)):
            typer.echo(f"created database {db.safe_url(url)}")
        db.upgrade(url, revision, timezone=_settings().timezone)
        typer.echo(f"at revision {db.current(url)}")
    except RecordsError as exc:
        raise _records_failed(exc) from exc


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at ('none' before the first migration)."""
    from dispatch.records import db
    from dispatch.records.db import RecordsError

    try:
        typer.echo(db.current(_database_url()) or "none")
    except RecordsError as exc:
        raise _records_failed(exc) from exc


@db_app.command("rebuild")
def db_rebuild() -> None:
    """Fold the record tables again from the audit chain (after a migration that adds
    figures, records archived before it get them); incidents whose creating event was pruned
    keep their record."""
    from dispatch.records.rebuild import rebuild

    s = _on_record(_database_url(), rebuild)
    typer.echo(
        f"rebuilt {s.incidents} incident records ({s.kept} kept: creating event pruned),"
        f" replayed {s.referral_events} referral events ({s.skipped} unreadable)"
    )


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain; exit 1 naming the first bad row when it is broken."""
    from dispatch.records.audit import verify

    verdict = _on_record(_database_url(), verify)
    if verdict.broken is not None:
        b = verdict.broken
        typer.secho(
            f"broken at seq {b.seq} (event {b.event_id}): {b.reason}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(1)
    typer.echo(f"ok: {verdict.rows} rows chained from seq {verdict.first_seq or '-'}")


@audit_app.command("prune")
def audit_prune() -> None:
    """Delete audit rows older than YISHAO_AUDIT_RETENTION_DAYS (refused when unset: forever)."""
    from datetime import UTC, datetime

    from dispatch.records.audit import prune

    settings = _settings()
    url = _database_url()
    days = settings.audit_retention_days
    if days is None:
        typer.secho(
            "error: YISHAO_AUDIT_RETENTION_DAYS is unset (keep forever); nothing pruned",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)

    def work(conn: Conn) -> Awaitable[int]:
        return prune(conn, retention_days=days, now=datetime.now(UTC))

    typer.echo(f"pruned {_on_record(url, work)} rows older than {days} days")
