"""Request dependencies: the services of the running app, the caller, and what they may do.

Every route declares its action with ``May(Action.X)`` (the token-level part of the rule:
role, and for dispatchers the agency) and checks the object with :func:`authorize`; both ask
:mod:`dispatch.core.policy`, the one written model. The role-matrix test reads the declared
action of every route from these dependencies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatch.core import policy
from dispatch.core.policy import Action, Target
from dispatch.errors import AuthError, ForbiddenError
from dispatch.models import Principal, Role
from dispatch.services import Services

_bearer = HTTPBearer(auto_error=False, description="Token from `yishao token mint`")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The verified caller. Raises AuthError (401) or RateLimitedError (429)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthError("missing bearer token")
    svc: Services = request.app.state.services
    return await svc.access.authenticate(creds.credentials, client=client_address(request))


class May:
    """A dependency admitting callers whose token may ask for ``action`` at all (else 403)."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, who: Annotated[Principal, Depends(principal)]) -> Principal:
        decision = policy.admits(who, self.action)
        if not decision.allowed:
            raise ForbiddenError(decision.reason)
        return who


def may(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """``Depends(may(Action.X))``: see :class:`May`."""
    return May(action)


def authorize(who: Principal, action: Action, target: Target) -> None:
    """Raise ForbiddenError (403, naming the rule) unless ``who`` may do it to ``target``."""
    decision = policy.decide(who, action, target)
    if not decision.allowed:
        raise ForbiddenError(decision.reason)


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits only ``roles`` (and admin); others get 403."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        who.require(*roles)
        return who

    return check


Svc = Annotated[Services, Depends(services)]
Who = Annotated[Principal, Depends(principal)]
