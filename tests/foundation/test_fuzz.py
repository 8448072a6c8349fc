"""Schemathesis against the service's own OpenAPI: whatever it is sent, never a 5xx.

Every operation gets generated requests (valid and, as schemathesis mutates them, not) from a
real server with a road graph and a real Redis, as an admin (the deepest reach) and as a
dispatcher. ``YISHAO_FUZZ_EXAMPLES`` sets the examples per operation (10 here; a long run:
``YISHAO_FUZZ_EXAMPLES=300 pytest tests/foundation/test_fuzz.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from dispatch.api import create_app
from dispatch.auth import mint
from dispatch.models import Agency, Role
from dispatch.settings import Settings
from routing import Router
from tests.utils import TEST_SECRET, ServerThread

EXAMPLES = int(os.environ.get("YISHAO_FUZZ_EXAMPLES", "10"))
# Revoking tokens would end the fuzzer's own; it has its own tests.
SKIP = {("POST", "/api/tokens/revoke")}


@pytest.fixture(scope="module")
def server(
    shanghai_router: Router, tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[ServerThread]:
    from routing import graph as graph_mod
    from tests.conftest import TEST_REDIS_URL as redis_url

    cache = tmp_path_factory.mktemp("fuzz") / "shanghai.npz"
    graph_mod.save(shanghai_router.graph, cache)
    sync_redis.Redis.from_url(redis_url).flushdb()
    tuned = Settings(
        env="test",
        secret=TEST_SECRET,
        redis_url=redis_url,
        graph=cache,
        auth_failures_max=100_000,
        intake_block_ms=50,
        # The record too, so that /api/kpis and /kpis are fuzzed against a real PostgreSQL.
        database_url=database_url,
    )
    with ServerThread(create_app(tuned)) as srv:
        yield srv
    sync_redis.Redis.from_url(redis_url).flushdb()


def _operations(server: ServerThread) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema.config.update(base_url=server.url)
    # Both valid requests and mutated ones (wrong types, missing fields, out-of-range values).
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIP:
            found.append(operation)
    return found


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DISPATCHER])
def test_no_request_gets_a_server_error(server: ServerThread, role: Role) -> None:
    token = mint(TEST_SECRET, role=role, agency=Agency.EMS, sub=f"fuzz-{role.value}", ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = _operations(server)
    assert len(operations) >= 30

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code} "
                    f"{response.text[:200]}"
                )

        run()
    assert not failures, "\n".join(failures[:30])
