"""Service settings: one pydantic-settings object read from ``YISHAO_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatch.constants import DEFAULT_NAMESPACE
from dispatch.errors import ConfigError

DEV_SECRET = "yishao-development-only-secret-change-me"


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
