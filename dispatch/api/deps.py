"""Request dependencies: the services of the running app and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatch.auth import Principal, verify
from dispatch.errors import AuthError
from dispatch.models import Role
from dispatch.services import Services

_bearer = HTTPBearer(auto_error=False, description="Token from `yishao token mint`")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller. Raises AuthError (401) when the token is missing or bad."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("missing bearer token")
    svc: Services = request.app.state.services
    return verify(svc.settings.secret, creds.credentials)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only ``roles`` (and admin); others get 403."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        who.require(*roles)
        return who

    return check


Svc = Annotated[Services, Depends(services)]
Who = Annotated[Principal, Depends(principal)]
