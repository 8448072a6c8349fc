"""`yishao compounds load FILE`: a good file lands in the store, a bad one is refused with one
line naming the feature (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from typer.testing import CliRunner

from dispatch.constants import Keys
from dispatch.core.compounds import Compound
from tests.utils import TEST_SECRET
from yishao.cli import app

RING = [[121.40, 31.20], [121.41, 31.20], [121.41, 31.21], [121.40, 31.21], [121.40, 31.20]]


def collection(*props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": p,
                "geometry": {"type": "Polygon", "coordinates": [RING]},
            }
            for p in props
        ],
    }


@pytest.fixture
def env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YISHAO_REDIS_URL", redis_url)
    monkeypatch.setenv("YISHAO_ENV", "test")
    monkeypatch.setenv("YISHAO_SECRET", TEST_SECRET)


def test_load_and_refuse(env: None, redis_url: str, keys: Keys, tmp_path: Path) -> None:
    # Synchronous: the command runs its own event loop.
    db = sync_redis.Redis.from_url(redis_url)
    db.flushdb()
    good = tmp_path / "good.geojson"
    good.write_text(json.dumps(collection({"id": "C1", "name": "Lakeside", "members": ["g1"]})))
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(collection({"id": "C2", "name": "ok"}, {"id": "C3"})))
    refused = CliRunner().invoke(app, ["compounds", "load", str(bad)])
    assert refused.exit_code == 2
    assert "feature 1 (id 'C3'): properties.name is missing" in refused.output
    assert db.smembers(keys.compound_index) == set()
    loaded = CliRunner().invoke(app, ["compounds", "load", str(good)])
    assert loaded.exit_code == 0, loaded.output
    assert "loaded 1 compounds" in loaded.output
    raw = db.hget(keys.compound("C1"), "json")
    assert raw is not None and Compound.model_validate_json(raw).members == ["g1"]
    db.flushdb()
