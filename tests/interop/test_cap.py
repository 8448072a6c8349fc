"""CAP 1.2 alerts: every message validates against the OASIS XSD, in Chinese and English."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import feedparser
import pytest
from pydantic import ValidationError

from dispatch.errors import ConflictError, NotFoundError
from dispatch.interop.cap import (
    CAP_MEDIA_TYPE,
    Alert,
    AlertState,
    CapRequest,
    CapStatus,
    Category,
    Certainty,
    MsgType,
    ResponseType,
    Severity,
    StoredMessage,
    Urgency,
    atom_feed,
    cap_time,
    choose_alert,
    plan_message,
    render,
)
from dispatch.interop.errors import InvalidCapError
from dispatch.interop.schemas import CAP_NS, CapSchema
from dispatch.models import IncidentStatus
from tests.interop.conftest import T0, joint_incident

NS = {"cap": CAP_NS}
NAMES = ("一哨群应联合指挥中心", "Yishao joint dispatch centre")
SENT_PATTERN = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


def _thread(*requests: CapRequest, start: datetime = T0) -> Alert:
    incident = joint_incident()
    alert: Alert | None = None
    for n, request in enumerate(requests):
        now = start + timedelta(minutes=10 * n, microseconds=123456)
        message = plan_message(
            request,
            incident,
            alert=alert,
            alert_id="YS-20261202-000001-A1",
            sender="yishao@pudong.yishao.local",
            sender_names=NAMES,
            now=now,
        )
        stored = StoredMessage(message=message, xml=render(message).decode())
        if alert is None:
            alert = Alert(
                alert_id="YS-20261202-000001-A1",
                incident_id=incident.id,
                status=message.status,
                created_at=message.sent,
                updated_at=message.sent,
                issued_by="disp",
                messages=[stored],
            )
        else:
            alert = alert.model_copy(
                update={
                    "messages": [*alert.messages, stored],
                    "state": AlertState.CANCELLED
                    if request.msg_type is MsgType.CANCEL
                    else alert.state,
                }
            )
    assert alert is not None
    return alert


ROAD_CLOSED = CapRequest(msg_type=MsgType.ALERT, headline="南京东路封闭，请绕行")
UPDATE = CapRequest(
    msg_type=MsgType.UPDATE,
    headline="南京东路仍封闭",
    headline_en="Nanjing Road East still closed",
    description="救援仍在进行",
    description_en="Rescue still under way",
    radius_m=800,
)
CANCEL = CapRequest(msg_type=MsgType.CANCEL, headline="南京东路已恢复通行")


def test_alert_update_cancel_all_validate(cap: CapSchema) -> None:
    alert = _thread(ROAD_CLOSED, UPDATE, CANCEL)
    for stored in alert.messages:
        cap.validate(stored.xml.encode())
    kinds = [
        ElementTree.fromstring(s.xml).findtext("cap:msgType", namespaces=NS) for s in alert.messages
    ]
    assert kinds == ["Alert", "Update", "Cancel"]


def test_each_message_has_a_chinese_and_an_english_info_block() -> None:
    for stored in _thread(ROAD_CLOSED, UPDATE).messages:
        root = ElementTree.fromstring(stored.xml)
        infos = root.findall("cap:info", NS)
        assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["zh-CN", "en-US"]
        for info in infos:
            assert info.findtext("cap:category", namespaces=NS) == "Transport"
            assert info.findtext("cap:responseType", namespaces=NS) == "Avoid"
            assert info.findtext("cap:severity", namespaces=NS) == "Extreme"  # severity 5
            circle = info.findtext("cap:area/cap:circle", namespaces=NS)
            assert circle is not None and circle.startswith("31.230400,121.473700 ")
    first = ElementTree.fromstring(_thread(ROAD_CLOSED).messages[0].xml)
    en = first.findall("cap:info", NS)[1]
    assert en.findtext("cap:headline", namespaces=NS) == (
        "Road traffic accident with people trapped near 黄浦区南京东路 100 号"
    )
    assert "Avoid the area" in (en.findtext("cap:instruction", namespaces=NS) or "")


def test_updates_and_cancels_reference_every_earlier_message() -> None:
    alert = _thread(ROAD_CLOSED, UPDATE, CANCEL)
    roots = [ElementTree.fromstring(s.xml) for s in alert.messages]
    ids = [r.findtext("cap:identifier", namespaces=NS) for r in roots]
    assert ids == [f"YS-20261202-000001-A1.{n}" for n in (1, 2, 3)]
    sent = [r.findtext("cap:sent", namespaces=NS) for r in roots]
    assert roots[0].find("cap:references", NS) is None
    sender = "yishao@pudong.yishao.local"
    assert roots[2].findtext("cap:references", namespaces=NS) == (
        f"{sender},{ids[0]},{sent[0]} {sender},{ids[1]},{sent[1]}"
    )
    assert all(r.findtext("cap:incidents", namespaces=NS) == "YS-20261202-000001" for r in roots)
    cancel = roots[2].findall("cap:info", NS)[0]
    assert cancel.findtext("cap:responseType", namespaces=NS) == "AllClear"
    assert cancel.findtext("cap:urgency", namespaces=NS) == "Past"


def test_times_are_whole_seconds_with_a_numeric_offset() -> None:
    root = ElementTree.fromstring(_thread(ROAD_CLOSED).messages[0].xml)
    sent = root.findtext("cap:sent", namespaces=NS) or ""
    assert sent == "2026-12-02T14:39:01+08:00" and SENT_PATTERN.match(sent)
    assert cap_time(T0, UTC) == "2026-12-02T06:39:01-00:00"


def test_exercise_status_is_kept_by_the_whole_thread(cap: CapSchema) -> None:
    drill = _thread(ROAD_CLOSED.model_copy(update={"status": CapStatus.EXERCISE}), UPDATE)
    for stored in drill.messages:
        cap.validate(stored.xml.encode())
        assert ElementTree.fromstring(stored.xml).findtext("cap:status", namespaces=NS) == (
            "Exercise"
        )
    actual_update = UPDATE.model_copy(update={"status": CapStatus.ACTUAL})
    with pytest.raises(ConflictError, match="Exercise"):
        plan_message(
            actual_update,
            joint_incident(),
            alert=drill,
            alert_id=drill.alert_id,
            sender="s",
            sender_names=NAMES,
            now=T0,
        )


def test_no_update_after_cancel_and_no_alert_for_a_closed_incident() -> None:
    cancelled = _thread(ROAD_CLOSED, CANCEL)
    with pytest.raises(ConflictError, match="cancelled"):
        plan_message(
            UPDATE,
            joint_incident(),
            alert=cancelled,
            alert_id=cancelled.alert_id,
            sender="s",
            sender_names=NAMES,
            now=T0,
        )
    closed = joint_incident().model_copy(update={"status": IncidentStatus.CLOSED})
    with pytest.raises(ConflictError, match="closed"):
        plan_message(
            ROAD_CLOSED, closed, alert=None, alert_id="x", sender="s", sender_names=NAMES, now=T0
        )


def test_choosing_the_alert_an_update_is_about() -> None:
    one = _thread(ROAD_CLOSED)
    assert choose_alert(UPDATE, [one], incident_id="i") is one
    two = one.model_copy(update={"alert_id": "YS-20261202-000001-A2"})
    with pytest.raises(InvalidCapError, match="alert_id"):
        choose_alert(UPDATE, [one, two], incident_id="i")
    assert (
        choose_alert(
            UPDATE.model_copy(update={"alert_id": two.alert_id}), [one, two], incident_id="i"
        )
        is two
    )
    with pytest.raises(NotFoundError):
        choose_alert(UPDATE.model_copy(update={"alert_id": "nope"}), [one], incident_id="i")
    with pytest.raises(InvalidCapError):
        choose_alert(
            ROAD_CLOSED.model_copy(update={"alert_id": one.alert_id}), [one], incident_id="i"
        )


@pytest.mark.parametrize(
    "field, value",
    [
        ("headline", ""),
        ("headline", "x" * 161),
        ("headline", "bell\x07"),
        ("radius_m", 5.0),
        ("msg_type", "Ack"),
        ("status", "Test"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(field: str, value: object) -> None:
    data = {"msg_type": "Alert", "headline": "道路封闭", field: value}
    with pytest.raises(ValidationError) as info:
        CapRequest.model_validate(data)
    assert info.value.errors()[0]["loc"][0] == field


def test_atom_feed_lists_current_alerts_newest_first(cap: CapSchema) -> None:
    active = _thread(ROAD_CLOSED, UPDATE)
    later = _thread(ROAD_CLOSED, start=T0 + timedelta(hours=1)).model_copy(
        update={"alert_id": "YS-20261202-000002-A1"}
    )
    cancelled = _thread(ROAD_CLOSED, CANCEL, start=T0 - timedelta(hours=5)).model_copy(
        update={"alert_id": "YS-20261201-000007-A1"}
    )
    now = T0 + timedelta(hours=1, minutes=5)
    body = atom_feed(
        [active, later, cancelled],
        feed_url="http://yishao.test/cap/alerts.atom",
        alert_url=lambda a: f"http://yishao.test/cap/alerts/{a}",
        now=now,
        title="Yishao public alerts",
        author="Yishao",
    )
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    links = [e.links[0].href for e in feed.entries]
    assert links == [
        "http://yishao.test/cap/alerts/YS-20261202-000002-A1",
        "http://yishao.test/cap/alerts/YS-20261202-000001-A1",
    ]
    assert feed.entries[1].title == "南京东路仍封闭"
    assert feed.entries[0].links[0].type == CAP_MEDIA_TYPE
    assert feed.entries[1].id == "tag:pudong.yishao.local,2026-12-02:cap:YS-20261202-000001-A1.2"
    # Past its expiry an alert leaves the feed; a fresh cancellation stays for a while.
    expired = atom_feed(
        [active], feed_url="f", alert_url=str, now=T0 + timedelta(hours=3), title="t", author="a"
    )
    assert feedparser.parse(expired).entries == []
    just_cancelled = _thread(ROAD_CLOSED, CANCEL)
    shown = atom_feed(
        [just_cancelled],
        feed_url="f",
        alert_url=str,
        now=T0 + timedelta(minutes=30),
        title="t",
        author="a",
    )
    assert len(feedparser.parse(shown).entries) == 1


def test_every_optional_field_still_validates(cap: CapSchema) -> None:
    full = CapRequest(
        msg_type=MsgType.ALERT,
        headline="化工厂火灾，浓烟扩散",
        headline_en="Chemical plant fire, smoke spreading",
        status=CapStatus.EXERCISE,
        description="浓烟向东南方向扩散",
        description_en="Smoke drifting south-east",
        instruction="请关闭门窗",
        instruction_en="Close windows and doors",
        category=Category.CBRNE,
        event="危化品火灾",
        event_en="Hazardous materials fire",
        response_type=ResponseType.SHELTER,
        urgency=Urgency.EXPECTED,
        severity=Severity.SEVERE,
        certainty=Certainty.LIKELY,
        area_desc="金山区 & <工业园>",
        radius_m=3000,
        expires_in_s=3 * 3600,
        note="演练 drill #3",
    )
    xml = _thread(full).messages[0].xml.encode()
    cap.validate(xml)
    root = ElementTree.fromstring(xml)
    assert root.findtext("cap:note", namespaces=NS) == "演练 drill #3"
    assert root.findtext("cap:info/cap:area/cap:areaDesc", namespaces=NS) == "金山区 & <工业园>"
    assert root.findtext("cap:info/cap:area/cap:circle", namespaces=NS).endswith(" 3")
