"""Opening the service's Redis client: one node or a cluster, with a pool that waits."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from dispatch.infra.store import AnyRedis
from dispatch.settings import Settings


def open_redis(settings: Settings) -> AnyRedis:
    """The Redis client of ``YISHAO_REDIS_URL`` (a cluster with ``YISHAO_REDIS_CLUSTER``).

    A blocking pool: under a burst, a request waits for a free connection (up to
    ``redis_pool_timeout_s``) instead of failing at once with "Too many connections".
    """
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, max_connections=settings.redis_pool_size)
    return Redis.from_pool(
        BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_pool_size,
            timeout=settings.redis_pool_timeout_s,
            health_check_interval=30,
        )
    )
