"""Service settings: one pydantic-settings object read from ``YISHAO_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatch.codec import parse_area
from dispatch.constants import DEFAULT_NAMESPACE
from dispatch.errors import ConfigError

DEV_SECRET = "yishao-development-only-secret-change-me"


class HubConfig(BaseModel):
    """Tuning of the push layer (the ``YISHAO_WS_*`` settings: :meth:`Settings.hub_config`)."""

    model_config = ConfigDict(frozen=True)

    queue_size: int = Field(1024, ge=1, description="messages queued per client before a cut")
    backlog_max: int = Field(20_000, ge=1, description="events buffered while a client replays")
    read_batch: int = Field(500, ge=1, le=10_000)
    block_ms: int = Field(500, ge=1)
    replay_page: int = Field(500, ge=1, le=10_000)
    heartbeat_s: float = Field(15.0, gt=0)
    auth_timeout_s: float = Field(10.0, gt=0)
    close_timeout_s: float = Field(5.0, gt=0)
    cache_size: int = Field(20_000, ge=1, description="incidents whose place the hub remembers")


class Settings(BaseSettings):
    """Everything the service reads from its environment.

    Raises:
        ConfigError: the default secret is used outside ``YISHAO_ENV=dev``.
    """

    model_config = SettingsConfigDict(env_prefix="YISHAO_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Set when YISHAO_REDIS_URL names a node of a Redis Cluster.
    redis_cluster: bool = False
    redis_pool_size: int = Field(64, ge=2, le=10_000)
    redis_pool_timeout_s: float = Field(5.0, gt=0)
    namespace: str = Field(DEFAULT_NAMESPACE, pattern=r"^[a-z0-9_-]{1,32}$")
    secret: str = DEV_SECRET
    graph: Path | None = None
    plans: Path | None = None
    instance: str = ""
    # Intake: how many entries one read takes, how long it blocks, when an entry
    # left pending by a dead consumer is reclaimed, and after how many failed
    # deliveries it is dead-lettered instead of retried.
    intake_batch: int = Field(100, ge=1, le=10_000)
    intake_block_ms: int = Field(1000, ge=1)
    reclaim_idle_ms: int = Field(30_000, ge=100)
    max_deliveries: int = Field(5, ge=1)
    # Joint intake: calls about one emergency merge within this distance and time.
    merge_distance_m: float = Field(300.0, gt=0)
    merge_window_s: float = Field(600.0, gt=0)
    # Units whose last position is older than this are ranked by home station.
    stale_position_s: float = Field(300.0, gt=0)
    whistle_ack_timeout_s: float = Field(30.0, gt=0)
    # Sound the whistle automatically for eligible incidents reported to 120 or 119, and
    # assign the suggested units of a sounded whistle without waiting for a dispatcher.
    auto_whistle: bool = False
    auto_assign_whistle: bool = False
    timer_poll_ms: int = Field(250, ge=10)
    # Screens get one frame of moved units per interval, not a message per fix.
    position_frame_s: float = Field(1.0, gt=0, le=10)
    token_ttl_s: int = Field(12 * 3600, ge=1)
    # No token may claim a longer life than this, whoever minted it (default a month).
    token_max_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    # Repeated authentication failures from one address: after this many within the window,
    # that address is locked out (429) for the lockout time, and the lockout is audited.
    auth_failures_max: int = Field(20, ge=1)
    auth_failure_window_s: int = Field(60, ge=1)
    auth_lockout_s: int = Field(300, ge=1)
    # Calls must come from here and now: the service area "west,south,east,north" (empty:
    # the road graph's extent plus 5 km, or anywhere without a graph), and a received_at no
    # older than max_age (a week: an EIDO may hand over a long-running incident) nor further
    # ahead than max_ahead (clock skew).
    service_area: str = ""
    call_max_age_s: float = Field(7 * 86_400.0, gt=0)
    call_max_ahead_s: float = Field(300.0, ge=0)
    # Request bodies larger than this are refused (413) unread; reports and EIDOs allow more.
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Browser origins allowed to open /ws ("" = the service's own origin only; "*" = any).
    # Clients that send no Origin (terminals, gateways, scripts) are not browsers: allowed.
    ws_origins: str = ""
    # Websocket push (YISHAO_WS_*): per-client queue before a slow client is cut, events
    # buffered while a client replays, reader batch and block, replay page, heartbeat,
    # auth and close timeouts, incidents whose place the hub remembers for its filters.
    ws_queue_size: int = Field(1024, ge=1)
    ws_backlog_max: int = Field(20_000, ge=1)
    ws_read_batch: int = Field(500, ge=1, le=10_000)
    ws_block_ms: int = Field(500, ge=1)
    ws_replay_page: int = Field(500, ge=1, le=10_000)
    ws_heartbeat_s: float = Field(15.0, gt=0)
    ws_auth_timeout_s: float = Field(10.0, gt=0)
    ws_close_timeout_s: float = Field(5.0, gt=0)
    ws_cache_size: int = Field(20_000, ge=1)
    # Standards adapters (dispatch.interop): where the standards' schemas live (default
    # ../shared/data/standards beside the repository) and the domain our EIDO and CAP ids use.
    standards_dir: Path | None = None
    interop_domain: str = Field("yishao.local", pattern=r"^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$")

    def hub_config(self) -> HubConfig:
        """The push layer's tuning, from the ``ws_*`` settings."""
        return HubConfig(
            queue_size=self.ws_queue_size,
            backlog_max=self.ws_backlog_max,
            read_batch=self.ws_read_batch,
            block_ms=self.ws_block_ms,
            replay_page=self.ws_replay_page,
            heartbeat_s=self.ws_heartbeat_s,
            auth_timeout_s=self.ws_auth_timeout_s,
            close_timeout_s=self.ws_close_timeout_s,
            cache_size=self.ws_cache_size,
        )

    @field_validator("service_area")
    @classmethod
    def _area(cls, value: str) -> str:
        parse_area(value)
        return value

    # The system of record (dispatch.records): PostgreSQL's URL (unset: no archive, the event
    # log capped in Redis as before); archived events younger than archive_keep_s stay in Redis
    # too (screens replay from there); audit rows older than audit_retention_days may be pruned
    # by `yishao audit prune` (unset: kept forever; CJIS asks at least a year).
    database_url: str | None = None
    archive_keep_s: float = Field(86_400.0, ge=0)
    archive_batch: int = Field(500, ge=1, le=10_000)
    archive_trim_s: float = Field(10.0, gt=0)
    audit_retention_days: int | None = Field(None, ge=1)

    # The built pages (`make web`); None: web/dist of the source tree. A raster tile server
    # ({z}/{x}/{y} template) for centres that have one; without it the map draws the graph.
    web_dir: Path | None = None
    tile_url: str | None = None
    tile_attribution: str | None = None

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.env != "dev" and self.secret == DEV_SECRET:
            raise ConfigError(
                "YISHAO_SECRET is the development default; set a secret of your own "
                "(or YISHAO_ENV=dev for a local trial)"
            )
        if len(self.secret) < 32:
            raise ConfigError(
                "YISHAO_SECRET must be at least 32 characters (HS256 wants a 256-bit key)"
            )
        return self
