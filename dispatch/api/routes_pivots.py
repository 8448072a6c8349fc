"""REST routes of pivot posts (支点) in service (issue 16).

``PUT /api/pivots/plan`` puts a plan in force (the JSON ``yishao pivots plan --out`` writes; a
police dispatcher or an admin); ``GET /api/pivots/plan`` reads it, ``GET /api/pivots/now`` the
posts standing now with the units posted at them, ``GET /api/pivots/history`` every plan put
in force, ``GET /api/pivots/postings`` the units posted now.
``POST``/``DELETE /api/pivots/posts/{post_id}/units/{unit_id}`` post a police unit at
a standing post and release it: while the post stands it is the unit's station for ranking.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from dispatch.api.deps import Svc, authorize, may
from dispatch.api.edge import EdgeRoute
from dispatch.core.pivot_plan import Plan, PlanRecord, Post, Posting, active_band
from dispatch.core.policy import Action, Target
from dispatch.errors import NotFoundError
from dispatch.models import Principal

router = APIRouter(prefix="/api/pivots", route_class=EdgeRoute)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}$"
PostPath = Annotated[
    str, Path(pattern=_ID, description="a post id, as the plan names it (month:kind:hours:node)")
]
UnitPath = Annotated[str, Path(pattern=_ID, description="a unit id")]

Reader = Annotated[Principal, Depends(may(Action.READ_PIVOTS))]
Planner = Annotated[Principal, Depends(may(Action.PUT_PIVOT_PLAN))]
Poster = Annotated[Principal, Depends(may(Action.POST_PIVOT_UNIT))]


class StandingPost(Post):
    units: list[str] = Field(description="ids of the units posted here")


class PostsNow(BaseModel):
    at: datetime = Field(description="the service clock")
    plan: PlanRecord | None = Field(description="the plan in force (None: no plan yet)")
    month: str | None = Field(None, description="the band in force: month, day kind, hours")
    day_kind: str | None = None
    hours: str | None = None
    cover_s: float | None = Field(None, description="a post covers what it reaches in this time")
    label: str | None = Field(None, description="e.g. SYNTHETIC: shown wherever the plan is")
    posts: list[StandingPost]


@router.put("/plan", response_model=PlanRecord, tags=["pivots"])
async def put_plan(plan: Plan, svc: Svc, who: Planner) -> PlanRecord:
    """Put a pivot-post plan in force from now (422 naming the field for a malformed plan)."""
    return await svc.pivots.put_plan(plan, actor=who.sub)


@router.get("/plan", response_model=Plan, tags=["pivots"])
async def get_plan(svc: Svc, who: Reader) -> Plan:
    """The plan in force (404 before the first is put)."""
    plan = await svc.pivots.plan()
    if plan is None:
        raise NotFoundError("no pivot-post plan has been put in force")
    return plan


@router.get("/history", response_model=list[PlanRecord], tags=["pivots"])
async def history(svc: Svc, who: Reader) -> list[PlanRecord]:
    """Every plan put in force, oldest first: each stood from its ``stored_at`` to the next's."""
    return await svc.pivots.history()


@router.get("/postings", response_model=list[Posting], tags=["pivots"])
async def postings(svc: Svc, who: Reader) -> list[Posting]:
    """The units posted now, by unit id: only postings whose post stands at the service clock
    (a posting ends with its post's hours, or when a new plan retires the post)."""
    return await svc.pivots.postings()


@router.get("/now", response_model=PostsNow, tags=["pivots"])
async def posts_now(svc: Svc, who: Reader) -> PostsNow:
    """The posts standing now (the plan's band at the service clock) and who is posted there."""
    now = svc.clock()
    plan = await svc.pivots.plan()
    records = await svc.pivots.history()
    band = active_band(plan, now) if plan else None
    postings = await svc.pivots.postings()
    posts = [
        StandingPost(**p.model_dump(), units=[x.unit_id for x in postings if x.post_id == p.id])
        for p in (band.posts if band else [])
    ]
    return PostsNow(
        at=now,
        plan=records[-1] if records else None,
        month=band.month if band else None,
        day_kind=band.day_kind.value if band else None,
        hours=band.hours if band else None,
        cover_s=plan.params.cover_s if plan else None,
        label=plan.history.label if plan else None,
        posts=posts,
    )


@router.post(
    "/posts/{post_id}/units/{unit_id}", status_code=201, response_model=Posting, tags=["pivots"]
)
async def post_unit(post_id: PostPath, unit_id: UnitPath, svc: Svc, who: Poster) -> Posting:
    """Post a police unit at a post standing now (its station for ranking while the post
    stands): 404 for a post not standing now, 422 for a unit of another kind of agency, 403
    for another agency's unit."""
    unit = await svc.fleet.get_unit(unit_id)
    authorize(who, Action.POST_PIVOT_UNIT, Target(units=(unit,)))
    return await svc.pivots.post_unit(post_id, unit, actor=who.sub)


@router.delete("/posts/{post_id}/units/{unit_id}", response_model=Posting, tags=["pivots"])
async def release_unit(post_id: PostPath, unit_id: UnitPath, svc: Svc, who: Poster) -> Posting:
    """Release a unit from its post (409 when it is not posted there)."""
    unit = await svc.fleet.get_unit(unit_id)
    authorize(who, Action.POST_PIVOT_UNIT, Target(units=(unit,)))
    return await svc.pivots.release_unit(post_id, unit_id, actor=who.sub)
