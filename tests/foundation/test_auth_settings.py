"""Tokens and settings."""

from __future__ import annotations

import jwt
import pytest

from dispatch.auth import mint, verify
from dispatch.errors import AuthError, ConfigError, ForbiddenError
from dispatch.models import Agency, Role
from dispatch.settings import DEV_SECRET, Settings
from tests.utils import TEST_SECRET


def test_mint_and_verify() -> None:
    token = mint(TEST_SECRET, role=Role.COORDINATOR, agency=Agency.EMS, sub="dr.wang", ttl_s=60)
    who = verify(TEST_SECRET, token)
    assert (who.role, who.agency, who.sub) == (Role.COORDINATOR, Agency.EMS, "dr.wang")


def test_expired_token_is_refused() -> None:
    token = mint(TEST_SECRET, role=Role.DISPATCHER, agency=Agency.FIRE, sub="x", ttl_s=10, now=1000)
    with pytest.raises(AuthError, match="expired"):
        verify(TEST_SECRET, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        mint(
            "another-secret-0123456789-0123456789",
            role=Role.ADMIN,
            agency=Agency.POLICE,
            sub="x",
            ttl_s=60,
        ),
        jwt.encode({"sub": "x", "role": "admin", "agency": "police"}, key=None, algorithm="none"),
        jwt.encode(
            {
                "iss": "yishao",
                "sub": "x",
                "role": "emperor",
                "agency": "police",
                "iat": 1,
                "exp": 2**40,
            },
            TEST_SECRET,
            algorithm="HS256",
        ),
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthError):
        verify(TEST_SECRET, token)


def test_tampered_claims_are_refused() -> None:
    token = mint(TEST_SECRET, role=Role.OBSERVER, agency=Agency.POLICE, sub="x", ttl_s=60)
    head, _body, sig = token.split(".")
    forged = jwt.encode({"role": "admin"}, TEST_SECRET).split(".")[1]
    with pytest.raises(AuthError):
        verify(TEST_SECRET, f"{head}.{forged}.{sig}")


def test_require_roles() -> None:
    who = verify(
        TEST_SECRET, mint(TEST_SECRET, role=Role.OBSERVER, agency=Agency.POLICE, sub="x", ttl_s=60)
    )
    who.require(Role.OBSERVER)
    with pytest.raises(ForbiddenError):
        who.require(Role.DISPATCHER)
    admin = verify(
        TEST_SECRET, mint(TEST_SECRET, role=Role.ADMIN, agency=Agency.POLICE, sub="a", ttl_s=60)
    )
    admin.require(Role.DISPATCHER)


def test_default_secret_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YISHAO_ENV", "prod")
    monkeypatch.delenv("YISHAO_SECRET", raising=False)
    with pytest.raises(ConfigError, match="YISHAO_SECRET"):
        Settings()
    monkeypatch.setenv("YISHAO_SECRET", "a-real-secret-of-some-length-0123456789")
    assert Settings().env == "prod"


def test_production_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain ``yishao serve`` with no environment refuses the published development secret."""
    monkeypatch.delenv("YISHAO_ENV", raising=False)
    monkeypatch.delenv("YISHAO_SECRET", raising=False)
    with pytest.raises(ConfigError, match="development default"):
        Settings()
    monkeypatch.setenv("YISHAO_ENV", "dev")
    assert Settings().env == "dev"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YISHAO_ENV", "dev")
    monkeypatch.setenv("YISHAO_REDIS_URL", "redis://10.1.2.3:6380/2")
    monkeypatch.setenv("YISHAO_GRAPH", "/data/fuyang.graph.npz")
    s = Settings()
    assert s.redis_url == "redis://10.1.2.3:6380/2"
    assert str(s.graph) == "/data/fuyang.graph.npz"
    assert s.secret == DEV_SECRET
