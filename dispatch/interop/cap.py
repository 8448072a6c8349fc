"""OASIS CAP 1.2 public alerts for an incident: plan, render, and an Atom feed of them. Pure.

An *alert* here is one thread of CAP messages about one public hazard of one incident: the
``Alert`` that opens it, any ``Update``, and the ``Cancel`` that ends it. Each message is a CAP
document of its own (identifier ``<alert id>.<n>``) whose ``references`` list every earlier
message of the thread as CAP requires (``sender,identifier,sent``). Every message carries one
``info`` block in Chinese (``zh-CN``) and one in English (``en-US``).

CAP times must carry a numeric offset and whole seconds (the XSD's pattern refuses ``Z`` and
fractions): they are written in China Standard Time, ``+08:00``, unless another zone is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Annotated
from xml.etree import ElementTree

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dispatch.errors import ConflictError, NotFoundError
from dispatch.interop.errors import InvalidCapError
from dispatch.interop.schemas import CAP_NS
from dispatch.models import CallType, Incident, IncidentStatus

CST = timezone(timedelta(hours=8), "CST")
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
# A cancelled alert stays in the feed this long, so a reader that polls sees the Cancel.
CANCEL_GRACE_S = 3600.0
# XML 1.0 refuses these characters outright; CAP text must not carry them.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    if _XML_FORBIDDEN.search(value):
        raise ValueError("contains control characters XML cannot carry")
    return value


Text = Annotated[str, AfterValidator(_xml_text)]


class MsgType(StrEnum):
    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class CapStatus(StrEnum):
    """``Actual`` for the public; ``Exercise`` for drills (readers must not act on it)."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"


class Category(StrEnum):
    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class ResponseType(StrEnum):
    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class AlertState(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


# What the public is told an incident of each call type is, and what to do by default.
_EVENT: Mapping[CallType, tuple[Category, str, str, ResponseType]] = {
    CallType.TRAFFIC_ACCIDENT: (Category.TRANSPORT, "交通事故", "Road traffic accident",
                                ResponseType.AVOID),
    CallType.TRAFFIC_ACCIDENT_ENTRAPMENT: (Category.TRANSPORT, "交通事故（有人员被困）",
                                           "Road traffic accident with people trapped",
                                           ResponseType.AVOID),
    CallType.DROWNING: (Category.RESCUE, "溺水救援", "Water rescue", ResponseType.AVOID),
    CallType.FALL_FROM_HEIGHT: (Category.RESCUE, "高处坠落救援", "Fall from height rescue",
                                ResponseType.AVOID),
    CallType.CRITICAL_PATIENT: (Category.HEALTH, "急危重症救治", "Medical emergency",
                                ResponseType.AVOID),
    CallType.FIRE: (Category.FIRE, "火灾", "Fire", ResponseType.AVOID),
    CallType.NATURAL_DISASTER: (Category.GEO, "自然灾害", "Natural disaster",
                                ResponseType.MONITOR),
    CallType.FIGHT: (Category.SECURITY, "治安事件", "Public order incident", ResponseType.AVOID),
    CallType.DISPUTE: (Category.SECURITY, "纠纷", "Dispute", ResponseType.AVOID),
    CallType.LABOUR_DISPUTE: (Category.SECURITY, "劳资纠纷", "Labour dispute",
                              ResponseType.AVOID),
    CallType.THEFT: (Category.SECURITY, "盗窃", "Theft", ResponseType.MONITOR),
    CallType.NOISE: (Category.SAFETY, "噪声扰民", "Noise disturbance", ResponseType.MONITOR),
    CallType.OTHER: (Category.OTHER, "突发事件", "Emergency incident", ResponseType.MONITOR),
}  # fmt: skip
_INSTRUCTION: Mapping[ResponseType, tuple[str, str]] = {
    ResponseType.AVOID: ("请避开该区域，绕道通行，为救援车辆让行。",
                         "Avoid the area, use other routes and give way to emergency vehicles."),
    ResponseType.SHELTER: ("请留在室内，关闭门窗和通风设备。",
                           "Stay indoors and close windows, doors and ventilation."),
    ResponseType.EVACUATE: ("请按现场人员指引立即撤离。",
                            "Leave the area now, following the directions of responders."),
    ResponseType.PREPARE: ("请做好防范准备，留意后续通知。",
                           "Get ready to act and watch for further notices."),
    ResponseType.MONITOR: ("请留意官方发布的后续信息。",
                           "Follow further official information."),
    ResponseType.ALL_CLEAR: ("警报解除，可恢复正常活动。",
                             "All clear: normal activity may resume."),
}  # fmt: skip


class CapRequest(BaseModel):
    """A dispatcher's alert, update or cancel for an incident (``POST .../cap``).

    Only ``msg_type`` and ``headline`` are required: the English text, category, event, urgency,
    severity, area and instruction default from the incident. ``headline`` is Chinese;
    ``headline_en`` (default: the event and place in English) heads the English block.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    msg_type: MsgType
    headline: Text = Field(min_length=1, max_length=160)
    headline_en: Text | None = Field(None, min_length=1, max_length=160)
    alert_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._\-]{1,100}$",
        description="the alert an Update or Cancel is about (default: the incident's only "
        "active one)",
    )
    status: CapStatus | None = Field(
        None, description="Actual (default) or Exercise for drills; Updates keep the alert's"
    )
    description: Text | None = Field(None, max_length=2000)
    description_en: Text | None = Field(None, max_length=2000)
    instruction: Text | None = Field(None, max_length=1000)
    instruction_en: Text | None = Field(None, max_length=1000)
    category: Category | None = None
    event: Text | None = Field(None, min_length=1, max_length=100)
    event_en: Text | None = Field(None, min_length=1, max_length=100)
    response_type: ResponseType | None = None
    urgency: Urgency | None = None
    severity: Severity | None = None
    certainty: Certainty | None = None
    area_desc: Text | None = Field(None, min_length=1, max_length=200)
    radius_m: float = Field(500.0, ge=10.0, le=50_000.0, allow_inf_nan=False)
    expires_in_s: int = Field(7200, ge=60, le=7 * 86400)
    note: Text | None = Field(None, max_length=500)


class Area(BaseModel):
    model_config = ConfigDict(frozen=True)

    desc: str
    lat: float
    lon: float
    radius_m: float


class Info(BaseModel):
    """One ``info`` block."""

    model_config = ConfigDict(frozen=True)

    language: str
    categories: list[Category]
    event: str
    response_types: list[ResponseType]
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    effective: datetime
    expires: datetime
    sender_name: str
    headline: str
    description: str | None = None
    instruction: str | None = None
    area: Area


class Message(BaseModel):
    """One CAP message, as stored and rendered."""

    model_config = ConfigDict(frozen=True)

    identifier: str
    sender: str
    sent: datetime
    status: CapStatus
    msg_type: MsgType
    references: list[str] = Field(default_factory=list)
    incidents: list[str] = Field(default_factory=list)
    note: str | None = None
    infos: list[Info]

    @property
    def reference(self) -> str:
        """This message as a CAP reference: ``sender,identifier,sent``."""
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


class StoredMessage(BaseModel):
    message: Message
    xml: str = Field(description="the CAP document exactly as served")


class Alert(BaseModel):
    """One alert thread: its messages, oldest first (what the store keeps)."""

    alert_id: str
    incident_id: str
    status: CapStatus
    state: AlertState = AlertState.ACTIVE
    created_at: datetime
    updated_at: datetime
    issued_by: str
    messages: list[StoredMessage]
    version: int = 0

    @property
    def latest(self) -> StoredMessage:
        return self.messages[-1]

    def current(self, now: datetime, *, grace_s: float = CANCEL_GRACE_S) -> bool:
        """Whether the feed lists it: active and unexpired, or cancelled a short while ago."""
        latest = self.latest.message
        if self.state is AlertState.CANCELLED:
            return (now - latest.sent).total_seconds() <= grace_s
        return all(info.expires > now for info in latest.infos)


class AlertSummary(BaseModel):
    """An alert as the incident's list shows it (no XML)."""

    alert_id: str
    incident_id: str
    status: CapStatus
    state: AlertState
    msg_type: MsgType
    identifier: str
    headline: str
    sent: datetime
    expires: datetime
    messages: int
    url: str

    @classmethod
    def of(cls, alert: Alert, *, url: str) -> AlertSummary:
        latest = alert.latest.message
        return cls(
            alert_id=alert.alert_id,
            incident_id=alert.incident_id,
            status=alert.status,
            state=alert.state,
            msg_type=latest.msg_type,
            identifier=latest.identifier,
            headline=latest.infos[0].headline,
            sent=latest.sent,
            expires=latest.infos[0].expires,
            messages=len(alert.messages),
            url=url,
        )


def cap_time(value: datetime, tz: tzinfo = CST) -> str:
    """A CAP ``dateTime``: whole seconds and a numeric offset (``2026-12-02T14:39:01+08:00``)."""
    local = value.astimezone(tz).replace(microsecond=0)
    text = local.isoformat()
    # CAP 1.2 writes UTC as -00:00 (never Z).
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def _severity_of(incident: Incident) -> Severity:
    return {5: Severity.EXTREME, 4: Severity.SEVERE, 3: Severity.MODERATE}.get(
        incident.severity or 0, Severity.MINOR if incident.severity else Severity.UNKNOWN
    )


def choose_alert(request: CapRequest, alerts: Sequence[Alert], *, incident_id: str) -> Alert | None:
    """The alert an Update or Cancel is about (None for a new Alert).

    Raises:
        InvalidCapError: an Alert naming an alert, or an Update/Cancel that names none while
            the incident has not exactly one active alert.
        NotFoundError: the named alert is not this incident's.
    """
    if request.msg_type is MsgType.ALERT:
        if request.alert_id is not None:
            raise InvalidCapError("alert_id: a new Alert starts a new alert; omit alert_id")
        return None
    if request.alert_id is not None:
        for alert in alerts:
            if alert.alert_id == request.alert_id:
                return alert
        raise NotFoundError(f"incident {incident_id} has no alert {request.alert_id}")
    active = [a for a in alerts if a.state is AlertState.ACTIVE]
    if len(active) != 1:
        raise InvalidCapError(f"alert_id: required, the incident has {len(active)} active alerts")
    return active[0]


def plan_message(
    request: CapRequest,
    incident: Incident,
    *,
    alert: Alert | None,
    alert_id: str,
    sender: str,
    sender_names: tuple[str, str],
    now: datetime,
) -> Message:
    """The CAP message a request makes.

    Args:
        request: what the dispatcher asked for.
        incident: the incident it is about.
        alert: the thread an Update or Cancel continues (None for an Alert).
        alert_id: the thread's id (new for an Alert).
        sender: CAP ``sender`` (no spaces, commas, ``<`` or ``&``).
        sender_names: ``(Chinese, English)`` sender names.
        now: when it is sent.

    Raises:
        ConflictError: an Update or Cancel of a cancelled alert, a status other than the
            alert's, or a new Alert for a closed incident.
    """
    if alert is None:
        if incident.status is IncidentStatus.CLOSED:
            raise ConflictError(f"incident {incident.id} is closed; no new alert")
        status = request.status or CapStatus.ACTUAL
        number = 1
        references: list[str] = []
    else:
        if alert.state is AlertState.CANCELLED:
            raise ConflictError(f"alert {alert.alert_id} was cancelled")
        if request.status is not None and request.status is not alert.status:
            raise ConflictError(
                f"alert {alert.alert_id} is {alert.status.value}; its messages keep that status"
            )
        status = alert.status
        number = len(alert.messages) + 1
        references = [m.message.reference for m in alert.messages]
    call_type = incident.call_types[0] if incident.call_types else CallType.OTHER
    category, event_zh, event_en, default_response = _EVENT[call_type]
    cancel = request.msg_type is MsgType.CANCEL
    response = ResponseType.ALL_CLEAR if cancel else request.response_type or default_response
    urgency = Urgency.PAST if cancel else request.urgency or Urgency.IMMEDIATE
    severity = Severity.MINOR if cancel else request.severity or _severity_of(incident)
    certainty = request.certainty or Certainty.OBSERVED
    sent = now.astimezone(UTC).replace(microsecond=0)
    expires = sent + timedelta(seconds=request.expires_in_s)
    place = request.area_desc or incident.address or f"{incident.lat:.5f}, {incident.lon:.5f}"
    area = Area(desc=place, lat=incident.lat, lon=incident.lon, radius_m=request.radius_m)
    event_zh = request.event or event_zh
    event_en = request.event_en or event_en
    default_zh, default_en = _INSTRUCTION.get(response, (None, None))
    headline_en = (
        request.headline_en
        or (
            f"All clear: {event_en.lower()} near {place}" if cancel else f"{event_en} near {place}"
        )[:160]
    )
    infos = [
        Info(
            language="zh-CN",
            categories=[request.category or category],
            event=event_zh,
            response_types=[response],
            urgency=urgency,
            severity=severity,
            certainty=certainty,
            effective=sent,
            expires=expires,
            sender_name=sender_names[0],
            headline=request.headline,
            description=request.description,
            instruction=request.instruction or default_zh,
            area=area,
        ),
        Info(
            language="en-US",
            categories=[request.category or category],
            event=event_en,
            response_types=[response],
            urgency=urgency,
            severity=severity,
            certainty=certainty,
            effective=sent,
            expires=expires,
            sender_name=sender_names[1],
            headline=headline_en,
            description=request.description_en,
            instruction=request.instruction_en or default_en,
            area=area,
        ),
    ]
    return Message(
        identifier=f"{alert_id}.{number}",
        sender=sender,
        sent=sent,
        status=status,
        msg_type=request.msg_type,
        references=references,
        incidents=[incident.id],
        note=request.note,
        infos=infos,
    )


def _sub(parent: ElementTree.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ElementTree.SubElement(parent, f"{{{CAP_NS}}}{tag}").text = text


def render(message: Message, *, tz: tzinfo = CST) -> bytes:
    """The CAP 1.2 XML of a message (UTF-8, elements in the XSD's order)."""
    ElementTree.register_namespace("", CAP_NS)
    root = ElementTree.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", message.identifier)
    _sub(root, "sender", message.sender)
    _sub(root, "sent", cap_time(message.sent, tz))
    _sub(root, "status", message.status.value)
    _sub(root, "msgType", message.msg_type.value)
    _sub(root, "scope", "Public")
    _sub(root, "note", message.note)
    _sub(root, "references", " ".join(message.references) or None)
    _sub(root, "incidents", " ".join(message.incidents) or None)
    for info in message.infos:
        block = ElementTree.SubElement(root, f"{{{CAP_NS}}}info")
        _sub(block, "language", info.language)
        for category in info.categories:
            _sub(block, "category", category.value)
        _sub(block, "event", info.event)
        for response in info.response_types:
            _sub(block, "responseType", response.value)
        _sub(block, "urgency", info.urgency.value)
        _sub(block, "severity", info.severity.value)
        _sub(block, "certainty", info.certainty.value)
        _sub(block, "effective", cap_time(info.effective, tz))
        _sub(block, "expires", cap_time(info.expires, tz))
        _sub(block, "senderName", info.sender_name)
        _sub(block, "headline", info.headline)
        _sub(block, "description", info.description)
        _sub(block, "instruction", info.instruction)
        area = ElementTree.SubElement(block, f"{{{CAP_NS}}}area")
        _sub(area, "areaDesc", info.area.desc)
        # CAP circles are "lat,lon radius" in WGS 84 with the radius in kilometres.
        _sub(
            area, "circle", f"{info.area.lat:.6f},{info.area.lon:.6f} {info.area.radius_m / 1000:g}"
        )
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def atom_feed(
    alerts: Iterable[Alert],
    *,
    feed_url: str,
    alert_url: Callable[[str], str],
    now: datetime,
    title: str,
    author: str,
) -> bytes:
    """An Atom 1.0 feed of the current alerts (see :meth:`Alert.current`), newest first.

    Each entry is an alert's latest message: its id is :func:`entry_id` of the message, its
    ``alternate`` link the alert's stable URL (``application/cap+xml``).
    """
    ElementTree.register_namespace("", ATOM_NS)
    current = sorted(
        (a for a in alerts if a.current(now)), key=lambda a: a.latest.message.sent, reverse=True
    )

    def el(
        parent: ElementTree.Element, tag: str, text: str | None = None, **attrs: str
    ) -> ElementTree.Element:
        node = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    feed = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    el(feed, "id", feed_url)
    el(feed, "title", title)
    updated = max((a.latest.message.sent for a in current), default=now)
    el(feed, "updated", _atom_time(updated))
    el(el(feed, "author"), "name", author)
    el(feed, "link", rel="self", href=feed_url, type=ATOM_MEDIA_TYPE)
    for alert in current:
        message = alert.latest.message
        zh = message.infos[0]
        entry = el(feed, "entry")
        el(entry, "id", entry_id(message))
        el(entry, "title", zh.headline)
        el(entry, "updated", _atom_time(message.sent))
        el(entry, "published", _atom_time(alert.messages[0].message.sent))
        el(entry, "link", rel="alternate", href=alert_url(alert.alert_id), type=CAP_MEDIA_TYPE)
        for category in dict.fromkeys(c for info in message.infos for c in info.categories):
            el(entry, "category", term=category.value)
        summary = (
            " / ".join(f"{i.event}: {i.headline}" for i in message.infos)
            + f" [{message.status.value} {message.msg_type.value}]"
        )
        el(entry, "summary", summary)
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def entry_id(message: Message) -> str:
    """An RFC 4151 ``tag:`` URI naming one CAP message for ever (Atom ids must be IRIs)."""
    domain = message.sender.rpartition("@")[2] or message.sender
    return f"tag:{domain},{message.sent.astimezone(UTC):%Y-%m-%d}:cap:{message.identifier}"


def _atom_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
