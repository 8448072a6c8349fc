"""Referrals (pure): consent and body required, dispute types only, the lifecycle with its
refused transitions, overdue, repeat-call linking, and the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.core import referrals as core
from dispatch.core.referrals import ReferralRefused, ReferralStatus
from dispatch.errors import ConflictError
from dispatch.models import CallType, Incident, IncidentStatus

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BODIES = core.parse_bodies("town-mediation=Town mediation committee; labour=Labour office")
DAY = timedelta(days=1)
S = ReferralStatus


def dispute(call_types: list[CallType] | None = None, **update: object) -> Incident:
    inc = Incident(
        id="I1",
        call_types=call_types or [CallType.DISPUTE],
        lat=31.2,
        lon=121.4,
        created_at=T0,
        updated_at=T0,
        last_call_at=T0,
    )
    return inc.model_copy(update=update)


def refer(incident: Incident | None = None, **kw: object) -> core.Referral:
    args: dict[str, object] = {"body": "town-mediation", "consent": True, **kw}
    return core.refer(
        incident or dispute(),
        referral_id="I1-R1",
        bodies=BODIES,
        now=T0,
        by="disp-110",
        due_after=7 * DAY,
        **args,  # type: ignore[arg-type]
    )


def test_bodies_parse() -> None:
    assert sorted(BODIES) == ["labour", "town-mediation"]
    with pytest.raises(ReferralRefused, match="mediation_bodies"):
        core.parse_bodies("no-equals-sign")
    assert core.bodies_from_list([{"id": "b1", "name": "B"}])["b1"].name == "B"
    with pytest.raises(ReferralRefused, match="mediation_file"):
        core.bodies_from_list({"id": "b1"})


@pytest.mark.parametrize("consent", [None, False])
def test_consent_is_required(consent: bool | None) -> None:
    with pytest.raises(ReferralRefused, match=r"^consent"):
        refer(consent=consent)


def test_body_must_be_known_and_incident_a_dispute() -> None:
    with pytest.raises(ReferralRefused, match=r"^body: 'court'"):
        refer(body="court")
    with pytest.raises(ConflictError, match="not a dispute"):
        refer(dispute([CallType.THEFT]))
    with pytest.raises(ConflictError, match="closed"):
        refer(dispute(status=IncidentStatus.CLOSED))
    mixed = refer(dispute([CallType.NOISE, CallType.LABOUR_DISPUTE]))
    assert mixed.call_types == [CallType.LABOUR_DISPUTE]


def test_lifecycle_and_refused_transitions() -> None:
    r = refer()
    assert r.status is S.REFERRED and r.due_at == T0 + 7 * DAY
    with pytest.raises(ConflictError, match="from referred to resolved"):
        core.advance(r, S.RESOLVED, now=T0, by="m")
    with pytest.raises(ConflictError):
        core.advance(r, S.IN_MEDIATION, now=T0, by="m")
    r = core.advance(r, S.ACCEPTED, now=T0 + DAY, by="m")
    with pytest.raises(ConflictError):
        core.advance(r, S.ACCEPTED, now=T0, by="m")
    r = core.advance(r, S.IN_MEDIATION, now=T0 + 2 * DAY, by="m")
    done = core.advance(r, S.RESOLVED, now=T0 + 3 * DAY, by="m", note="agreement signed")
    assert [s.status for s in done.steps] == [S.REFERRED, S.ACCEPTED, S.IN_MEDIATION, S.RESOLVED]
    assert done.steps[-1].note == "agreement signed" and done.version == 4
    for later in S:
        with pytest.raises(ConflictError):
            core.advance(done, later, now=T0, by="m")
    failed = core.advance(refer(), S.FAILED, now=T0, by="m", note="back to the police")
    assert failed.status is S.FAILED


def test_overdue() -> None:
    r = refer()
    assert not core.is_overdue(r, T0 + 7 * DAY)
    assert core.is_overdue(r, T0 + 7 * DAY + timedelta(seconds=1))
    resolved = core.advance(
        core.advance(core.advance(r, S.ACCEPTED, now=T0, by="m"), S.IN_MEDIATION, now=T0, by="m"),
        S.RESOLVED,
        now=T0,
        by="m",
    )
    assert not core.is_overdue(resolved, T0 + 30 * DAY)


def test_repeat_calls_link_within_72h_and_the_place() -> None:
    r = refer()
    window = timedelta(hours=72)

    def repeat(call_type: CallType, lat: float, hours: float) -> core.Referral | None:
        at = T0 + timedelta(hours=hours)
        return core.repeat_of(call_type, lat, 121.4, at, [r], window=window, radius_m=150)

    assert repeat(CallType.DISPUTE, 31.2005, 10) is r  # 55 m, 10 h later
    assert repeat(CallType.DISPUTE, 31.2005, 73) is None  # too late
    assert repeat(CallType.DISPUTE, 31.2005, -1) is None  # before the referral
    assert repeat(CallType.DISPUTE, 31.203, 10) is None  # 330 m away
    assert repeat(CallType.LABOUR_DISPUTE, 31.2, 10) is None  # another dispute
    assert repeat(CallType.THEFT, 31.2, 10) is None
    linked = core.link_repeat(r, "120:D2")
    assert linked is not None and linked.repeat_calls == ["120:D2"]
    assert core.link_repeat(linked, "120:D2") is None
    figures = core.counts([linked, refer()], T0 + 8 * DAY)
    assert figures.total == 2 and figures.repeat_calls == 1 and figures.with_repeats == 1
    assert figures.overdue == 2 and figures.by_status["referred"] == 2
