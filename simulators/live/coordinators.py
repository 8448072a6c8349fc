"""The live drill's coordinators: one websocket each, acking summons after a human delay.

Each coordinator of the roster hears its ``whistle.summons`` and ``whistle.stand_down`` events;
a :class:`CoordinatorSim` decides when (or whether: the scenario's silent share) it answers, and
the ack goes back over the coordinator's own socket. Coordinators named silent in the drill's
tuning never answer, so the service escalates to their backup.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping

from ..coordinators import CoordinatorSim
from .net import Handler, Message, Session


class Coordinators:
    """Every coordinator of a live drill (see the module docstring).

    Args:
        sims: coordinator name -> its behaviour.
        silent: names that never ack.
        now_s: the current field second.
    """

    def __init__(
        self,
        sims: Mapping[str, CoordinatorSim],
        *,
        silent: Collection[str],
        now_s: Callable[[], float],
    ) -> None:
        self.sims = dict(sims)
        self.silent = frozenset(silent)
        self.now_s = now_s
        self.sessions: dict[str, Session] = {}
        self.silenced: list[tuple[str, str]] = []
        self.acks_sent: list[tuple[str, str, float]] = []

    def attach(self, name: str, session: Session) -> None:
        """The socket a coordinator acks over."""
        self.sessions[name] = session

    @property
    def busy(self) -> bool:
        """Some coordinator still owes an ack."""
        return any(c.next_due_s() is not None for c in self.sims.values())

    def handler(self, name: str) -> Handler:
        """The handler of coordinator ``name``'s socket."""

        def handle(msg: Message) -> None:
            kind = msg.get("type")
            data = msg.get("data") or {}
            summons = data.get("summons")
            if not isinstance(summons, dict) or summons.get("coordinator") != name:
                return
            if kind == "whistle.summons":
                if name in self.silent:
                    self.silenced.append((name, str(summons.get("id"))))
                    return
                self.sims[name].summon(
                    whistle_id=str(data.get("whistle_id")),
                    summons_id=str(summons.get("id")),
                    now_s=self.now_s(),
                )
            elif kind == "whistle.stand_down":
                self.sims[name].stand_down(str(summons.get("id")))

        return handle

    async def run(self, stop: asyncio.Event) -> None:
        """Send each ack when it is due, until ``stop``."""
        while not stop.is_set():
            now = self.now_s()
            for name, sim in self.sims.items():
                for due in sim.step(now):
                    await self.sessions[name].send({"type": "ack", "whistle_id": due.whistle_id})
                    self.acks_sent.append((name, due.whistle_id, now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)
