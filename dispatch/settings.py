"""Service settings: one pydantic-settings object read from ``YISHAO_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatch.codec import parse_area
from dispatch.constants import DEFAULT_NAMESPACE
from dispatch.core.backlog import BacklogLimits
from dispatch.core.dead import DeadLimits
from dispatch.core.kpis import DEFAULT_TIMEZONE
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

    env: Literal["dev", "test", "prod"] = "prod"
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
    # Overload: past intake_lag_alarm entries owed (pending + undelivered) the instance is not
    # ready (/api/health/ready 503) and the lag alarm is raised, cleared again below 80 %;
    # past intake_backlog_max POST /api/calls answers 503 with Retry-After. The watch reads
    # the backlog every intake_watch_s. A production instance (YISHAO_ENV=prod) without a
    # road graph is not ready.
    intake_lag_alarm: int = Field(5_000, ge=1)
    intake_backlog_max: int = Field(50_000, ge=1)
    intake_retry_after_s: int = Field(5, ge=1, le=3600)
    intake_watch_s: float = Field(1.0, gt=0, le=60)
    # Dead letters: each field cut to dead_field_max_bytes and the entry to
    # dead_entry_max_bytes (size and SHA-256 of what was cut kept); the dead stream trimmed to
    # about dead_max_bytes (dead_max_bytes / dead_entry_max_bytes entries, at least 1,000).
    dead_field_max_bytes: int = Field(1024, ge=64, le=1024 * 1024)
    dead_entry_max_bytes: int = Field(8192, ge=256, le=16 * 1024 * 1024)
    dead_max_bytes: int = Field(1024**3, ge=1024 * 1024)
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
    # A claimed timer's lease, renewed every heartbeat while its instance works: a dead
    # instance's timers fire elsewhere about timer_lease_s later.
    timer_lease_s: float = Field(5.0, gt=0, le=600)
    timer_heartbeat_s: float = Field(1.0, gt=0, le=60)
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
    # Compounds and property teams (issue 15): an incident within this distance of a
    # compound's gate is in it; a police dispatcher's join of the team is needed unless
    # property_auto_join (the plan says automatic). Mediation bodies disputes are referred to:
    # "id=name" pairs separated by ";" (or a JSON file of [{"id", "name"}] in mediation_file);
    # a referral not resolved within referral_due_h is overdue; repeat calls within
    # referral_repeat_h and referral_repeat_m of the referred incident are linked to it.
    compound_gate_distance_m: float = Field(30.0, ge=0, le=1000)
    property_auto_join: bool = False
    mediation_bodies: str = (
        "district-property-mediation=District property-dispute mediation centre;"
        "labour-arbitration=Labour arbitration / human-resources office;"
        "town-mediation=Town people's mediation committee"
    )
    mediation_file: Path | None = None
    referral_due_h: float = Field(7 * 24.0, gt=0)
    referral_repeat_h: float = Field(72.0, gt=0)
    referral_repeat_m: float = Field(150.0, gt=0)
    # Standards adapters (dispatch.interop): where the standards' schemas live (default
    # ../shared/data/standards beside the repository) and the domain our EIDO and CAP ids use.
    standards_dir: Path | None = None
    # J2735 intersection numbers (a JSON list of {node, id, region?, approaches?}); without
    # it a node id below 2**32 is region = id >> 16, IntersectionID = id & 0xFFFF.
    j2735_intersections: Path | None = None
    interop_domain: str = Field("yishao.local", pattern=r"^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$")

    def dead_limits(self) -> DeadLimits:
        """The dead-letter bounds, from the ``dead_*`` settings."""
        return DeadLimits(
            field_max_bytes=self.dead_field_max_bytes,
            entry_max_bytes=self.dead_entry_max_bytes,
            max_bytes=self.dead_max_bytes,
        )

    def backlog_limits(self) -> BacklogLimits:
        """The overload thresholds, from the ``intake_*`` settings."""
        return BacklogLimits(alarm=self.intake_lag_alarm, hard=self.intake_backlog_max)

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
    # The district's clock for the figures: hours of the day, weeks and months are counted in
    # this IANA zone (a command centre reports its own hours, not UTC's).
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"not an IANA time zone: {value!r}") from exc
        return value

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
        if self.timer_heartbeat_s >= self.timer_lease_s:
            raise ConfigError("YISHAO_TIMER_HEARTBEAT_S must be shorter than YISHAO_TIMER_LEASE_S")
        if self.intake_lag_alarm > self.intake_backlog_max:
            raise ConfigError("YISHAO_INTAKE_LAG_ALARM must not exceed YISHAO_INTAKE_BACKLOG_MAX")
        if len(self.secret) < 32:
            raise ConfigError(
                "YISHAO_SECRET must be at least 32 characters (HS256 wants a 256-bit key)"
            )
        return self


# What each setting means, for `yishao settings` and the README's table (a test keeps the three
# in step: a new field without a line here fails it).
SETTING_HELP: dict[str, str] = {
    "env": "`prod` refuses the development secret; `dev` (what `make run` sets) allows it",
    "redis_url": "Redis for live state and the event log (a cluster node with redis_cluster)",
    "redis_cluster": "the URL names a node of a Redis Cluster",
    "redis_pool_size": "connections per instance",
    "redis_pool_timeout_s": "wait for a free connection before failing a request",
    "namespace": "prefix of every Redis key (several deployments on one Redis)",
    "secret": "HS256 key of the access tokens (at least 32 characters)",
    "graph": "road graph: a cache `.npz`, or an `.osm`/`.osm.pbf` built at start",
    "plans": "response-plan TOML overriding `dispatch/core/plans.toml`",
    "instance": "this instance's name in logs and leases (default: host-pid-random)",
    "intake_batch": "call-stream entries one intake read takes",
    "intake_block_ms": "how long an intake read blocks",
    "reclaim_idle_ms": "an entry a dead consumer left pending is reclaimed after this",
    "max_deliveries": "failed deliveries before an entry is dead-lettered",
    "intake_lag_alarm": "entries owed by intake past which the service is not ready (alarm event)",
    "intake_backlog_max": "past this backlog new calls are refused with 503 and Retry-After",
    "intake_retry_after_s": "the Retry-After those refusals carry",
    "intake_watch_s": "how often the intake backlog is read",
    "dead_field_max_bytes": "dead-letter fields are cut to this (size and SHA-256 kept)",
    "dead_entry_max_bytes": "... and a whole dead-letter entry to this",
    "dead_max_bytes": "the dead-letter stream is trimmed to about this many bytes",
    "timer_lease_s": "a claimed timer's lease (a dead instance's timers fire elsewhere after it)",
    "timer_heartbeat_s": "how often a working instance renews its timers' leases",
    "merge_distance_m": "joint intake: calls about one emergency merge within this distance",
    "merge_window_s": "... and within this time",
    "stale_position_s": "units whose last fix is older are ranked from their station",
    "whistle_ack_timeout_s": "a summons not acked by then escalates to the backup",
    "auto_whistle": "sound the whistle for eligible 120/119 incidents without a tap",
    "auto_assign_whistle": "assign a sounded whistle's suggested units without a dispatcher",
    "timer_poll_ms": "how often due timers (escalations) are looked for",
    "position_frame_s": "screens get one frame of moved units per interval",
    "token_ttl_s": "lifetime of tokens the CLI mints",
    "token_max_ttl_s": "no token may claim a longer life, whoever minted it",
    "auth_failures_max": "failed authentications from one address before a lockout",
    "auth_failure_window_s": "... counted within this window",
    "auth_lockout_s": "length of the lockout (429, audited)",
    "service_area": "`west,south,east,north` calls must lie in (empty: the graph's extent + 5 km)",
    "call_max_age_s": "a call's received_at may be at most this old",
    "call_max_ahead_s": "... and at most this far ahead (clock skew)",
    "max_body_bytes": "larger request bodies are refused (413) unread",
    "ws_origins": "browser origins allowed on /ws (empty: own origin; `*`: any)",
    "ws_queue_size": "messages queued per socket before a slow client is cut",
    "ws_backlog_max": "events buffered while a client replays",
    "ws_read_batch": "events one push read takes",
    "ws_block_ms": "how long a push read blocks",
    "ws_replay_page": "events per replay page",
    "ws_heartbeat_s": "heartbeat interval (carries the resume position)",
    "ws_auth_timeout_s": "a socket must authenticate within this",
    "ws_close_timeout_s": "grace for a closing socket",
    "ws_cache_size": "incidents whose place the hub remembers for its filters",
    "compound_gate_distance_m": "an incident this near a compound's gate is in the compound",
    "property_auto_join": "join the compound's security team without the dispatcher's approval",
    "mediation_bodies": "`id=name` pairs (`;`-separated) of the bodies disputes are referred to",
    "mediation_file": '... or a JSON file of `[{"id", "name"}]` instead',
    "referral_due_h": "a referral not resolved within this is flagged overdue",
    "referral_repeat_h": "a dispute call this soon after a referral is linked to it as a repeat",
    "referral_repeat_m": "... when it comes from within this distance",
    "database_url": "PostgreSQL, the system of record (unset: no archive, no figures)",
    "archive_keep_s": "archived events this recent stay in Redis too (for replays)",
    "archive_batch": "events the archiver writes per transaction",
    "archive_trim_s": "how often the Redis event log is trimmed below the archive",
    "audit_retention_days": "audit rows older than this may be pruned (unset: kept forever)",
    "timezone": "IANA zone the figures count hours, weeks and months in",
    "standards_dir": "schemas of EIDO, CAP and J2735 (default `../shared/data/standards`)",
    "j2735_intersections": "J2735 numbers of intersections: JSON `[{node, id, region?, "
    "approaches?}]` (unset: node id = region * 65536 + id, ids below 2^32 only)",
    "interop_domain": "domain of our EIDO and CAP identifiers",
    "web_dir": "the built pages (default `web/dist` of the source tree)",
    "tile_url": "a raster tile server `{z}/{x}/{y}` template (default: the map draws the graph)",
    "tile_attribution": "attribution shown with those tiles",
}


def settings_table() -> str:
    """Every setting as a markdown table: variable, default, meaning."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if name == "secret":
            shown = "development-only (refused outside dev)"
        elif default is None or default == "":
            shown = "—"
        else:
            shown = f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `YISHAO_{name.upper()}` | {shown} | {SETTING_HELP.get(name, '')} |")
    return "\n".join(rows)
