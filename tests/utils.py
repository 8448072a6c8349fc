"""Test helpers: one time unit, free ports, and a real uvicorn server on a thread."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import uvicorn
from fastapi import FastAPI

# One time unit that scales every timeout in the suite (YISHAO_TEST_MS=2 on a slow box).
MS = float(os.environ.get("YISHAO_TEST_MS", "1")) / 1000

TEST_SECRET = "test-secret-0123456789abcdef-0123456789"


def recently(minutes_ago: float = 0.0) -> str:
    """An ISO 8601 time (Shanghai offset) ``minutes_ago`` before now: a live call's
    ``received_at`` (the service refuses calls more than a week old)."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return at.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerThread:
    """Runs ``app`` with uvicorn on 127.0.0.1:<free port> in a thread of its own."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.app = app

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10_000 * MS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def wait_for(
    predicate: Callable[[], Any], *, timeout_s: float = 5.0, interval_s: float = 0.02
) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout_s * 1000 * MS
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)
