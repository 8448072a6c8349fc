"""CAP alerts in Redis: every issue, update and cancel is one commit with its event.

An alert thread is a versioned object at ``{ns}:cap:<alert id>`` (its messages and their XML,
so a message's URL serves the same bytes forever); ``{ns}:cap:alerts`` orders alerts by their
latest message for the feed, and ``{ns}:incident:<id>:cap`` lists an incident's alerts. Each
commit appends ``cap.issued``, ``cap.updated`` or ``cap.cancelled`` to the event log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatch.errors import NotFoundError
from dispatch.events import CapMessageEvent, EventType
from dispatch.infra.store import Store
from dispatch.interop.cap import (
    CST,
    Alert,
    AlertState,
    CapRequest,
    MsgType,
    StoredMessage,
    choose_alert,
    plan_message,
    render,
)
from dispatch.interop.eido import Origin
from dispatch.interop.schemas import CapSchema

MAX_ATTEMPTS = 16
EVENT_TYPE = {
    MsgType.ALERT: EventType.CAP_ISSUED,
    MsgType.UPDATE: EventType.CAP_UPDATED,
    MsgType.CANCEL: EventType.CAP_CANCELLED,
}
SENDER_NAMES = ("一哨群应联合指挥中心", "Yishao joint dispatch centre")


class AlertDesk:
    """Issues, updates and cancels an incident's CAP alerts.

    Args:
        store: the state store.
        clock: the time source.
        origin: our domain (the CAP ``sender`` is ``yishao@<domain>``).
        schema: the CAP 1.2 XSD; when given, every message is validated before it is stored.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        origin: Origin,
        schema: CapSchema | None,
        sender_names: tuple[str, str] = SENDER_NAMES,
    ) -> None:
        self.store = store
        self.clock = clock
        self.origin = origin
        self.schema = schema
        self.sender_names = sender_names

    async def get(self, alert_id: str) -> Alert | None:
        return await self.store.get(Alert, self.store.keys.cap_alert(alert_id))

    async def alerts_of(self, incident_id: str) -> list[Alert]:
        """The incident's alerts, oldest first."""
        ids = await self.store.members(self.store.keys.incident_cap(incident_id))
        found = await self.store.get_many(Alert, [self.store.keys.cap_alert(i) for i in ids])
        return sorted((a for a in found if a is not None), key=lambda a: a.created_at)

    async def recent(self, *, limit: int = 500) -> list[Alert]:
        """The alerts whose latest message is newest, newest first."""
        ids = await self.store.newest(self.store.keys.cap_alerts, limit=limit)
        found = await self.store.get_many(Alert, [self.store.keys.cap_alert(i) for i in ids])
        return [a for a in found if a is not None]

    async def issue(
        self, incident_id: str, request: CapRequest, *, actor: str
    ) -> tuple[Alert, StoredMessage]:
        """Make, validate and store one CAP message of ``request``'s type.

        Returns:
            The alert thread after the change, and the new message.

        Raises:
            NotFoundError: no such incident, or no such alert of it.
            ConflictError: the alert was cancelled, or its status differs.
            InvalidCapError: the alert would not be valid CAP 1.2, or the request names no alert
                where one is needed.
            StoreError: Redis failed, or the incident's alerts kept changing.
        """
        keys = self.store.keys

        async def attempt() -> tuple[Alert, StoredMessage]:
            now = self.clock()
            incident = await self.store.get_incident(incident_id)
            if incident is None:
                raise NotFoundError(f"no incident {incident_id}")
            alerts = await self.alerts_of(incident_id)
            thread = choose_alert(request, alerts, incident_id=incident_id)
            alert_id = thread.alert_id if thread else f"{incident.id}-A{len(alerts) + 1}"
            message = plan_message(
                request,
                incident,
                alert=thread,
                alert_id=alert_id,
                sender=self.origin.automaton,
                sender_names=self.sender_names,
                now=now,
            )
            xml = render(message, tz=CST)
            if self.schema is not None:
                self.schema.validate(xml)
            stored = StoredMessage(message=message, xml=xml.decode("utf-8"))
            if thread is None:
                after = Alert(
                    alert_id=alert_id,
                    incident_id=incident.id,
                    status=message.status,
                    created_at=message.sent,
                    updated_at=message.sent,
                    issued_by=actor,
                    messages=[stored],
                    version=1,
                )
            else:
                after = thread.model_copy(
                    update={
                        "messages": [*thread.messages, stored],
                        "updated_at": message.sent,
                        "version": thread.version + 1,
                        "state": AlertState.CANCELLED
                        if request.msg_type is MsgType.CANCEL
                        else thread.state,
                    }
                )
            key = keys.cap_alert(alert_id)
            tx = self.store.tx()
            tx.expect_version(key, thread.version if thread else 0)
            tx.put(key, after, after.version)
            tx.zadd(keys.cap_alerts, alert_id, message.sent.timestamp())
            tx.sadd(keys.incident_cap(incident.id), alert_id)
            tx.event(
                EVENT_TYPE[request.msg_type],
                CapMessageEvent(
                    alert_id=alert_id,
                    identifier=message.identifier,
                    msg_type=message.msg_type.value,
                    status=message.status.value,
                    headline=message.infos[0].headline,
                    headline_en=message.infos[1].headline,
                    expires=message.infos[0].expires,
                    references=message.references,
                ),
                actor=actor,
                ts=now,
                incident_id=incident.id,
            )
            await self.store.commit(tx)
            return after, stored

        return await self.store.retry(
            attempt,
            what=f"the alerts of incident {incident_id} (nothing issued)",
            attempts=MAX_ATTEMPTS,
        )
