"""Push tests run the real app under uvicorn (ServerThread) against the test Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from redis.asyncio import Redis

from dispatch.api import create_app
from dispatch.settings import HubConfig, Settings
from tests.utils import ServerThread

ServerFactory = Callable[..., ServerThread]


@pytest.fixture
def servers(settings: Settings, redis: Redis) -> Iterator[ServerFactory]:
    """Start servers on free ports (after ``redis`` flushed the test database)."""
    with ExitStack() as stack:

        def start(*, run_workers: bool = True, **hub: object) -> ServerThread:
            config = HubConfig.model_validate({"heartbeat_s": 60, **hub})
            app = create_app(settings, run_workers=run_workers, hub_config=config)
            return stack.enter_context(ServerThread(app))

        yield start


@pytest.fixture
def server(servers: ServerFactory) -> ServerThread:
    return servers()
