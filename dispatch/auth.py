"""Bearer tokens: HMAC-signed (HS256 JWT) claims of role, agency and subject."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt
from pydantic import BaseModel, Field, ValidationError

from dispatch.errors import AuthError, ForbiddenError
from dispatch.models import Agency, Role

ALGORITHM = "HS256"
ISSUER = "yishao"


class Principal(BaseModel):
    """Who is calling: the claims of a verified token."""

    sub: str = Field(min_length=1, max_length=128)
    role: Role
    agency: Agency
    # Optional scope: the intersections a signal controller serves, the compounds a
    # property team covers, the unit a terminal drives.
    scope: list[str] = Field(default_factory=list)
    exp: int
    iat: int

    def require(self, *roles: Role) -> None:
        """Raise ForbiddenError unless this principal has one of ``roles`` (admin always may)."""
        if self.role is Role.ADMIN or self.role in roles:
            return
        allowed = ", ".join(r.value for r in roles)
        raise ForbiddenError(f"role {self.role.value} may not do this (needs {allowed})")


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
    """Sign a token for ``sub`` valid for ``ttl_s`` seconds from ``now`` (epoch seconds)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "sub": sub,
        "role": role.value,
        "agency": agency.value,
        "scope": list(scope),
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str) -> Principal:
    """Check a token's signature, issuer and expiry.

    Raises:
        AuthError: missing, malformed, wrongly signed or expired.
    """
    if not token:
        raise AuthError("missing token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    try:
        return Principal.model_validate(claims)
    except ValidationError as exc:
        raise AuthError("invalid token claims") from exc
