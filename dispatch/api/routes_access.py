"""Token revocation (``/api/me``, what a token may do, is the console's: routes_console)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from dispatch.api.deps import Svc, may
from dispatch.api.edge import EdgeRoute
from dispatch.auth import Revocation
from dispatch.core.policy import Action
from dispatch.models import Principal, Role

router = APIRouter(prefix="/api", tags=["access"], route_class=EdgeRoute)


class RevokeRequest(BaseModel):
    """Name exactly one: a token id (``jti``), a subject, or a role."""

    jti: str | None = Field(None, max_length=64)
    sub: str | None = Field(None, min_length=1, max_length=128)
    role: Role | None = None

    @model_validator(mode="after")
    def _one(self) -> RevokeRequest:
        if sum(x is not None for x in (self.jti, self.sub, self.role)) != 1:
            raise ValueError("name exactly one of jti, sub or role")
        return self


@router.post("/tokens/revoke", response_model=Revocation)
async def revoke(
    body: RevokeRequest,
    svc: Svc,
    who: Annotated[Principal, Depends(may(Action.REVOKE_TOKENS))],
) -> Revocation:
    """End tokens now: one by its id, or every token of a subject or role issued until now.

    Open websockets of those tokens are closed (4401) on every instance.
    """
    now = int(svc.clock().timestamp())
    revocation = Revocation(jti=body.jti, sub=body.sub, role=body.role, before=now)
    return await svc.access.revoke(revocation, actor=who.sub)
