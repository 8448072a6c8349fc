"""PostgreSQL: the pool, the one error type, and the migrations (alembic).

RecordsError
└── (a StoreError: 503 at the edge, retried by the consumer loop)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# The zone upgrade() has migration 0004 store local hours, weeks and months in when none is
# given (the service's default YISHAO_TIMEZONE); db.DEFAULT_TIMEZONE names it too.
from dispatch.core.kpis import DEFAULT_TIMEZONE as DEFAULT_TIMEZONE
from dispatch.errors import StoreError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

T = TypeVar("T")
# A connection of its own or one lent by a pool: the statements are the same.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
MIGRATIONS = Path(__file__).with_name("migrations")
# Serialises archive writers (several instances, one chain): pg_advisory_xact_lock's key.
CHAIN_LOCK = 0x59495348  # "YISH"


class RecordsError(StoreError):
    """PostgreSQL unreachable, or a statement failed."""


# What a lost or refused connection raises (asyncpg's own errors and the socket's).
PG_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def guarded(what: str, call: Awaitable[T]) -> T:
    """Await ``call``, wrapping PostgreSQL and connection errors as :class:`RecordsError`."""
    try:
        return await call
    except PG_ERRORS as exc:
        raise RecordsError(f"{what}: {exc}") from exc


async def open_pool(url: str, *, max_size: int = 4) -> asyncpg.Pool:
    """A pool that connects lazily (min_size 0), so the service starts while PG is down."""
    try:
        pool = await asyncpg.create_pool(dsn=url, min_size=0, max_size=max_size, timeout=5)
    except PG_ERRORS as exc:
        raise RecordsError(f"cannot open a pool on {safe_url(url)}: {exc}") from exc
    return pool


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection for a command (verify, prune, migrations' database check)."""
    try:
        conn = await asyncpg.connect(dsn=url, timeout=5)
    except PG_ERRORS as exc:
        raise RecordsError(f"cannot connect to {safe_url(url)}: {exc}") from exc
    try:
        yield conn
    finally:
        await conn.close()


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` as SQLAlchemy's asyncpg dialect names it (what alembic runs on)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg{sep}{rest}"
    return url


async def ensure_database(url: str) -> bool:
    """Create the URL's database when it does not exist (connecting to ``postgres``).

    Returns:
        True when it was created.
    """
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    async with connection(admin) as conn:
        exists = await guarded(
            "look up database", conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        )
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        await guarded("create database", conn.execute(f"CREATE DATABASE {quoted}"))
        return True


def alembic_config(url: str) -> object:
    """The alembic configuration for our migrations against ``url`` (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", *, timezone: str = DEFAULT_TIMEZONE) -> None:
    """Apply the migrations up to ``revision`` (synchronous: alembic runs its own loop).

    Args:
        timezone: the district's zone, in which migration 0004 stores the hour, week and month
            of each first call (a query in another zone computes them per row instead).
    """
    from alembic import command
    from alembic.config import Config

    cfg = alembic_config(url)
    assert isinstance(cfg, Config)
    cfg.attributes["timezone"] = timezone
    command.upgrade(cfg, revision)


def current(url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    import asyncio

    async def read() -> str | None:
        async with connection(url) as conn:
            has = await guarded(
                "read revision", conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
            )
            if not has:
                return None
            found = await guarded(
                "read revision", conn.fetchval("SELECT version_num FROM alembic_version")
            )
            return None if found is None else str(found)

    return asyncio.run(read())
