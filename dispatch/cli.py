"""The ``yishao`` command: serve, tokens, schemas, and the operator's tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dispatch import __version__
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from routing.cli import graph_app, route

app = typer.Typer(
    name="yishao",
    help="Yishao (一哨群应): joint 122/120/119 emergency dispatch with green-wave signal priority.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="Mint and check access tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(graph_app, name="graph", help="Build and inspect road graphs.")
app.command("route")(route)


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
) -> None:
    """Run the service (HTTP API, websockets, call intake) with uvicorn.

    Settings come from YISHAO_* environment variables (YISHAO_REDIS_URL, YISHAO_SECRET,
    YISHAO_GRAPH, ...). Start several on different ports against one Redis to scale out.
    """
    import uvicorn

    from dispatch.api import create_app
    from dispatch.logs import configure

    configure(log_level.upper())
    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        ws_ping_interval=10,
        ws_ping_timeout=10,
    )


@token_app.command("mint")
def token_mint(
    role: Annotated[
        str,
        typer.Option(help="dispatcher, coordinator, terminal, signal, property, observer, admin."),
    ],
    agency: Annotated[str, typer.Option(help="police, traffic, ems, fire, property.")],
    sub: Annotated[str, typer.Option(help="Subject: a person, unit or controller id.")],
    ttl_s: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 12 * 3600,
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
    typer.echo(mint(settings.secret, role=r, agency=a, sub=sub, ttl_s=ttl_s, scope=scope or ()))


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
        str, typer.Argument(help="Which message: call, incident, event, unit, ... or 'list'.")
    ],
) -> None:
    """Print the JSON Schema of a public message."""
    from dispatch.models import SCHEMAS

    if name == "list":
        typer.echo("\n".join(sorted(SCHEMAS)))
        return
    model = SCHEMAS.get(name)
    if model is None:
        typer.secho(
            f"error: unknown schema {name!r}; one of: {', '.join(sorted(SCHEMAS))}", err=True
        )
        raise typer.Exit(2)
    typer.echo(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))


@app.command("call")
def call_send(
    file: Annotated[
        Path, typer.Argument(help="JSON file with one call or a list of calls; '-' for stdin.")
    ],
) -> None:
    """Validate calls and add them to the intake stream (as a call-taking system would)."""
    import asyncio

    from pydantic import ValidationError
    from redis.asyncio import Redis

    from dispatch.codec import validation_reason
    from dispatch.constants import Keys
    from dispatch.models import CallEvent
    from dispatch.store import Store

    settings = _settings()
    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    calls = []
    for n, item in enumerate(items):
        try:
            calls.append(CallEvent.model_validate(item))
        except ValidationError as exc:
            typer.secho(f"error: call {n}: {validation_reason(exc)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    async def send() -> list[str]:
        redis = Redis.from_url(settings.redis_url)
        try:
            store = Store(redis, Keys(settings.namespace))
            return [await store.add_call(call) for call in calls]
        finally:
            await redis.aclose()

    for sid in asyncio.run(send()):
        typer.echo(sid)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
