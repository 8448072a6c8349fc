"""Bearer tokens: HMAC-signed (HS256 JWT) claims of role, agency, subject, scope and id.

Every token carries its own id (``jti``, so one token can be revoked) and a lifetime no
longer than the deployment's maximum (``YISHAO_TOKEN_MAX_TTL_S``): a token that claims more
is refused even when its signature is good. Revocation itself is state (Redis) and lives in
:mod:`dispatch.flow.access`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatch.errors import AuthError
from dispatch.models import Agency, Principal, Role

__all__ = ["ALGORITHM", "ISSUER", "Principal", "Revocation", "mint", "verify"]

ALGORITHM = "HS256"
ISSUER = "yishao"
# A month: a roadside signal controller's token; people's tokens are a shift (12 h).
DEFAULT_MAX_TTL_S = 30 * 24 * 3600


def mint(
    secret: str,
    *,
    role: Role,
    agency: Agency,
    sub: str,
    ttl_s: int,
    scope: Iterable[str] = (),
    now: float | None = None,
) -> str:
    """Sign a token for ``sub`` valid for ``ttl_s`` seconds from ``now`` (epoch seconds).

    Raises:
        ValueError: ``ttl_s`` is not positive.
    """
    if ttl_s <= 0:
        raise ValueError("a token's lifetime must be positive")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
        "sub": sub,
        "role": role.value,
        "agency": agency.value,
        "scope": list(scope),
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str, *, max_ttl_s: int = DEFAULT_MAX_TTL_S) -> Principal:
    """Check a token's signature, issuer, expiry, id and lifetime.

    Raises:
        AuthError: missing, malformed, wrongly signed, expired, without an id, or claiming a
            lifetime over ``max_ttl_s``.
    """
    if not token:
        raise AuthError("missing token")
    if len(token) > 8192:
        raise AuthError("invalid token: too long")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    try:
        who = Principal.model_validate(claims)
    except ValidationError as exc:
        raise AuthError("invalid token claims") from exc
    if who.exp - who.iat > max_ttl_s:
        raise AuthError(f"token lifetime over the maximum of {max_ttl_s} s")
    if not who.jti:
        raise AuthError("invalid token claims: no id")
    return who


class Revocation(BaseModel):
    """Tokens no longer honoured: one token (``jti``), or every token of a subject or a role
    issued at or before ``before`` (epoch seconds). Exactly one of the three is given."""

    model_config = ConfigDict(frozen=True)

    jti: str | None = Field(None, max_length=64)
    sub: str | None = Field(None, min_length=1, max_length=128)
    role: Role | None = None
    before: int

    @model_validator(mode="after")
    def _one(self) -> Revocation:
        if sum(x is not None for x in (self.jti, self.sub, self.role)) != 1:
            raise ValueError("name exactly one of jti, sub or role")
        return self

    def covers(self, who: Principal) -> bool:
        """Whether this revocation ends ``who``'s token."""
        if self.jti is not None:
            return who.jti == self.jti
        if who.iat > self.before:
            return False
        return who.sub == self.sub if self.sub is not None else who.role is self.role

    def field(self) -> str:
        """Its key in the revocation hash (``jti:<id>``, ``sub:<name>``, ``role:<role>``)."""
        if self.jti is not None:
            return f"jti:{self.jti}"
        if self.sub is not None:
            return f"sub:{self.sub}"
        assert self.role is not None
        return f"role:{self.role.value}"


def revocation_fields(who: Principal) -> list[str]:
    """The revocation-hash fields that could end ``who``'s token."""
    return [f"jti:{who.jti}", f"sub:{who.sub}", f"role:{who.role.value}"]
