"""Duty coordinators answering whistle summons, as pure step-able objects.

A coordinator paged by the whistle acks after a human-like delay (lognormal: most within half
a minute, a long tail) or, for a set share of summons, never (asleep, phone in a locker, at
another scene); that share is what exercises the whistle's escalation to the backup. Each
summons draws from its own seeded stream, so the answer to one page does not depend on how many
other pages came before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from .clock import lognormal_s, substream


class CoordinatorBehaviour(BaseModel):
    """How coordinators answer (one setting for the whole roster)."""

    model_config = ConfigDict(frozen=True)

    ack_median_s: float = Field(default=25.0, gt=0, description="median time to ack a page")
    ack_sigma: float = Field(default=0.6, ge=0, description="lognormal spread")
    min_ack_s: float = Field(default=4.0, ge=0, description="unlock phone, read, press")
    silent_share: float = Field(
        default=0.12, ge=0, le=1, description="share of summons never acked"
    )


@dataclass(frozen=True, slots=True)
class AckDue:
    """The coordinator presses ack (the caller passes it to ``dispatch.core.whistle.ack``)."""

    coordinator: str
    whistle_id: str
    summons_id: str
    at_s: float


class CoordinatorSim:
    """One coordinator's pager and thumb.

    Args:
        name: the coordinator (token subject, as in the roster).
        behaviour: delay and silence settings.
        seed: the drill seed.
    """

    def __init__(self, name: str, behaviour: CoordinatorBehaviour, *, seed: int) -> None:
        self.name = name
        self.behaviour = behaviour
        self.seed = seed
        self._due: dict[str, AckDue] = {}
        self.silenced: list[str] = []

    def summon(self, *, whistle_id: str, summons_id: str, now_s: float) -> None:
        """A page arrives: decide now (seeded) whether and when it will be acked."""
        if summons_id in self._due:
            return  # a re-sent page changes nothing
        rng = substream(self.seed, "ack", summons_id, self.name)
        b = self.behaviour
        if rng.random() < b.silent_share:
            self.silenced.append(summons_id)
            return
        delay = b.min_ack_s + lognormal_s(rng, b.ack_median_s, b.ack_sigma)
        self._due[summons_id] = AckDue(self.name, whistle_id, summons_id, now_s + delay)

    def stand_down(self, summons_id: str) -> None:
        """A colleague covered the page or the whistle closed: the ack will not come."""
        self._due.pop(summons_id, None)

    def next_due_s(self) -> float | None:
        """When the next ack is due, if any."""
        return min((a.at_s for a in self._due.values()), default=None)

    def step(self, now_s: float) -> list[AckDue]:
        """Acks due at or before ``now_s``, oldest first (and forget them)."""
        due = sorted(
            (a for a in self._due.values() if a.at_s <= now_s), key=lambda a: (a.at_s, a.summons_id)
        )
        for a in due:
            del self._due[a.summons_id]
        return due
