"""The command line and the compose file, run as an operator would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.auth import verify
from tests.utils import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
YISHAO = [sys.executable, "-m", "yishao"]
ENV = {**os.environ, "YISHAO_SECRET": TEST_SECRET, "YISHAO_ENV": "test"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*YISHAO, *args], capture_output=True, text=True, env=env or ENV, cwd=ROOT, timeout=120
    )


def command_paths() -> list[list[str]]:
    """Every command path of the ``yishao`` CLI, from click's own tree."""
    import typer

    from yishao.cli import app

    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append(path)
        # typer ships its own click; duck-type the group rather than import it.
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_every_command_has_help() -> None:
    """In one process (click's runner): a subprocess per command took minutes under load."""
    from typer.testing import CliRunner

    from yishao.cli import app

    runner = CliRunner()
    paths = command_paths()
    assert {"serve", "token", "schema", "drill", "sumo", "pivots"} <= {p[0] for p in paths if p}
    for path in paths:
        r = runner.invoke(app, [*path, "--help"], prog_name="yishao")
        assert r.exit_code == 0, (path, r.output)
        assert "Usage" in r.output
    assert len(paths) >= 20


def test_the_command_itself_starts_and_stays_light() -> None:
    """``python -m yishao --help`` as an operator runs it; the service's heavy imports wait."""
    r = run("--help")
    assert r.returncode == 0 and "Usage" in r.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, yishao.cli; print(sorted(m for m in "
         "('osmnx', 'geopandas', 'scipy', 'fastapi', 'esda', 'libsumo') if m in sys.modules))"],
        capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "[]", probe.stdout


def test_token_mint_round_trip() -> None:
    r = run(
        "token",
        "mint",
        "--role",
        "coordinator",
        "--agency",
        "ems",
        "--sub",
        "dr.li",
        "--ttl-s",
        "60",
    )
    assert r.returncode == 0, r.stderr
    who = verify(TEST_SECRET, r.stdout.strip())
    assert who.sub == "dr.li" and who.role.value == "coordinator"


def test_token_mint_refuses_unknown_role() -> None:
    r = run("token", "mint", "--role", "emperor", "--agency", "ems", "--sub", "x")
    assert r.returncode == 2


def test_default_secret_refused_in_prod() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YISHAO_")} | {
        "YISHAO_ENV": "prod"
    }
    r = run("token", "mint", "--role", "admin", "--agency", "police", "--sub", "x", env=env)
    assert r.returncode == 2
    assert "YISHAO_SECRET" in r.stderr


def test_schema_call_is_json_schema() -> None:
    r = run("schema", "call")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["title"] == "CallEvent"
    assert {"call_id", "centre", "call_type", "lat", "lon", "received_at"} <= set(
        schema["required"]
    )


def compose_config() -> str:
    """The compose file as docker-compose resolves it (skips when it is not installed)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (make test installs it)")
    r = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "YISHAO_SECRET": "x" * 40},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_compose_file_parses() -> None:
    text = compose_config()
    assert "appendonly" in text
    assert "yishao" in text and "redis" in text


def test_serve_with_a_missing_graph_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = subprocess.run(
        [*YISHAO, "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env={**ENV, "YISHAO_GRAPH": str(tmp_path / "nowhere.graph.npz")},
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nowhere.graph.npz" in lines[0] and "yishao graph build" in lines[0]


def test_compose_builds_the_graph_once_and_the_service_waits_for_it() -> None:
    services = yaml.safe_load(compose_config())["services"]
    graph, service = services["graph"], services["yishao"]
    script = " ".join(graph["command"])
    assert "yishao graph build" in script and "map.graph.npz" in script
    assert service["environment"]["YISHAO_GRAPH"] == "/data/graph/map.graph.npz"
    assert service["depends_on"]["graph"]["condition"] == "service_completed_successfully"
    assert not str(service.get("restart", "")).startswith(("always", "unless-stopped"))
