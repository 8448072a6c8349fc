"""UPER SRM/SSM: round trips through our codec, and bytes checked against pycrate's.

pycrate (a PyPI package) ships its own compiled ISO TS 19091 DSRC module and its own PER
encoder, so bytes it produces are an independent implementation's; asn1tools (ours) and pycrate
share no code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pycrate_asn1dir import ITS_IS

from dispatch.errors import ConfigError
from dispatch.interop.errors import J2735Error
from dispatch.interop.j2735 import (
    DerivedIntersections,
    IntersectionMap,
    WireIntersection,
    codec,
    decode_srm,
    decode_ssm,
    encode_srm,
    encode_ssm,
    from_minute_ms,
    intersections_from_list,
    published_asn1,
    srm_value,
    ssm_value,
    to_minute_ms,
    unwrap_msg_count,
    wire_request_key,
    wire_station_id,
)
from dispatch.services import j2735_intersections
from dispatch.settings import Settings
from routing import Router
from routing.arbiter import Arbiter, IntersectionState, SignalStatus
from routing.greenwave import (
    ApproachLabel,
    Requester,
    RequestType,
    SignalRequest,
    VehicleRole,
    plan_green_wave,
)
from routing.synthetic import synthetic_city

NOW = datetime(2026, 12, 2, 6, 39, 1, 250_000, tzinfo=UTC)


@pytest.fixture(scope="module")
def wave() -> tuple[list[SignalRequest], IntersectionMap]:
    """A real green wave: an ambulance across a seeded synthetic city, every signal mapped."""
    router = Router(synthetic_city(20, seed=3))
    g = router.graph
    route = router.route(
        (float(g.node_lat.min()) + 1e-4, float(g.node_lon.min()) + 1e-4),
        (float(g.node_lat.max()) - 1e-4, float(g.node_lon.max()) - 1e-4),
    )
    requester = Requester(
        agency="120", unit_id="AMB-07", role=VehicleRole.AMBULANCE, incident_priority=1
    )
    plan = plan_green_wave(route, departure=NOW, requester=requester)
    requests = plan.requests[:32]
    assert len(requests) >= 3, "the route should cross several signals"
    table = {
        r.intersection_id: WireIntersection(id=1200 + n, region=310) for n, r in enumerate(requests)
    }
    return requests, IntersectionMap(table)


def _window(r: SignalRequest) -> tuple[datetime, datetime]:
    return r.arrive_from, r.arrive_to + timedelta(seconds=r.hold_s)


def test_srm_round_trip_keeps_what_the_arbiter_needs(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, table = wave
    data = encode_srm(requests, intersections=table, standards=standards)
    back = decode_srm(data, intersections=table, standards=standards, now=NOW)
    assert len(back) == len(requests)
    for sent, got in zip(requests, back, strict=True):
        assert got.request_id == sent.request_id
        assert got.intersection_id == sent.intersection_id
        assert got.request_type is sent.request_type
        assert (got.inbound.label, got.outbound.label) == (sent.inbound.label, sent.outbound.label)
        assert got.requester == sent.requester
        assert got.importance == sent.importance == 14
        start, end = _window(sent)
        assert abs((got.arrive_from - start).total_seconds()) <= 0.001
        assert abs((got.arrive_to - end).total_seconds()) <= 0.001
        assert got.arrive_from <= got.eta <= got.arrive_to
    # The value round-trips exactly at the wire level too.
    spec = codec(standards)
    value = srm_value(requests, intersections=table)
    assert spec.decode("SignalRequestMessage", data) == value


def test_ssm_round_trip_of_the_arbiters_decisions(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, table = wave
    arbiter = Arbiter()
    decisions = []
    for r in requests[:4]:
        state = arbiter.decide(IntersectionState(intersection_id=r.intersection_id), r, now=NOW)
        decisions += state.decisions
    assert {d.status for d in decisions} == {SignalStatus.GRANTED}
    data = encode_ssm(decisions, intersections=table, standards=standards, now=NOW, sequence=130)
    assert data is not None
    statuses = decode_ssm(data, intersections=table, standards=standards, now=NOW)
    keys = {wire_request_key(d.request): d for d in decisions}
    assert len(statuses) == 4
    for st in statuses:
        d = keys[(st.station_id, st.request_number)]
        assert st.intersection_id == d.request.intersection_id
        assert st.status is SignalStatus.GRANTED and st.wire_status == "granted"
        assert st.role is VehicleRole.AMBULANCE
        assert st.window_from is not None and d.granted_from is not None
        assert abs((st.window_from - d.granted_from).total_seconds()) <= 0.001


def test_finished_requests_are_not_listed(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, table = wave
    r = requests[0]
    arbiter = Arbiter()
    state = arbiter.decide(IntersectionState(intersection_id=r.intersection_id), r, now=NOW)
    cancel = r.model_copy(update={"request_type": RequestType.CANCEL, "sequence": r.sequence + 1})
    state = arbiter.decide(state, cancel, now=NOW)
    assert state.decisions[0].status is SignalStatus.CANCELLED
    assert (
        encode_ssm(state.decisions, intersections=table, standards=standards, now=NOW, sequence=1)
        is None
    )


def test_our_bytes_decode_identically_in_pycrate(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, table = wave
    srm = ITS_IS.DSRC.SignalRequestMessage
    srm.from_uper(encode_srm(requests, intersections=table, standards=standards))
    assert srm.get_val() == srm_value(requests, intersections=table)
    decisions = (
        Arbiter()
        .decide(
            IntersectionState(intersection_id=requests[0].intersection_id), requests[0], now=NOW
        )
        .decisions
    )
    ssm = ITS_IS.DSRC.SignalStatusMessage
    data = encode_ssm(decisions, intersections=table, standards=standards, now=NOW, sequence=9)
    assert data is not None
    ssm.from_uper(data)
    assert ssm.get_val() == ssm_value(decisions, intersections=table, now=NOW, sequence=9)


def _pycrate_srm() -> bytes:
    """An SRM as a third-party OBU might send it, encoded by pycrate: fields we never write
    (sub-role, vehicle position, transit status) and a lane-less outbound."""
    minute, ms = to_minute_ms(NOW)
    srm = ITS_IS.DSRC.SignalRequestMessage
    srm.set_val(
        {
            "timeStamp": minute,
            "second": ms,
            "sequenceNumber": 127,
            "requests": [
                {
                    "request": {
                        "id": {"region": 310, "id": 1201},
                        "requestID": 77,
                        "requestType": "priorityRequest",
                        "inBoundLane": ("approach", 4),
                    },
                    "minute": minute,
                    "second": ms + 20_000,
                    "duration": 15_000,
                }
            ],
            "requestor": {
                "id": ("stationID", 3_000_000_001),
                "type": {
                    "role": "fire",
                    "subrole": "requestSubRole1",
                    "request": "requestImportanceLevel13",
                    "iso3883": 12,
                },
                "position": {
                    "position": {"lat": 312_304_000, "long": 1_214_737_000},
                    "heading": 7200,
                },
                "name": "119:E-12",
                "transitStatus": (0b00100000, 8),
            },
        }
    )
    data: bytes = srm.to_uper()
    return data


def test_bytes_from_pycrate_decode_in_our_codec(standards: Path) -> None:
    node = 4_817_002_117  # an OSM node id: far beyond J2735's 16-bit IntersectionID
    table = IntersectionMap({node: WireIntersection(id=1201, region=310)})
    [got] = decode_srm(_pycrate_srm(), intersections=table, standards=standards, now=NOW)
    assert got.intersection_id == node
    assert got.request_id == f"119:E-12:{node}"
    assert got.requester.role is VehicleRole.FIRE and got.importance == 13
    assert got.requester.incident_priority == 1
    assert got.request_type is RequestType.REQUEST
    assert got.inbound.label.value == "W" and got.outbound.label.value == "W"
    assert got.sequence == 127
    assert got.arrive_from == NOW + timedelta(seconds=20)
    assert got.arrive_to == NOW + timedelta(seconds=35)


def test_ssm_from_pycrate_decodes_in_our_codec(standards: Path) -> None:
    _, ms = to_minute_ms(NOW)
    ssm = ITS_IS.DSRC.SignalStatusMessage
    ssm.set_val(
        {
            "second": ms,
            "status": [
                {
                    "sequenceNumber": 3,
                    "id": {"id": 77},
                    "sigStatus": [
                        {
                            "requester": {
                                "id": ("entityID", b"\x00\x00\x01\x02"),
                                "request": 5,
                                "sequenceNumber": 2,
                                "role": "police",
                            },
                            "inboundOn": ("approach", 1),
                            "status": "watchOtherTraffic",
                        },
                        {"inboundOn": ("lane", 3), "status": "granted"},
                    ],
                }
            ],
        }
    )
    table = IntersectionMap({991: WireIntersection(id=77)})
    [st] = decode_ssm(ssm.to_uper(), intersections=table, standards=standards, now=NOW)
    assert (st.intersection_id, st.station_id, st.request_number) == (991, 258, 5)
    assert st.status is SignalStatus.PROCESSING and st.wire_status == "watchOtherTraffic"
    assert st.role is VehicleRole.POLICE and st.window_from is None


def test_constraints_are_checked_not_wrapped(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, _ = wave
    too_big = IntersectionMap({requests[0].intersection_id: WireIntersection(id=70_000)})
    with pytest.raises(J2735Error, match=r"IntersectionID|70000"):
        encode_srm(requests[:1], intersections=too_big, standards=standards)
    with pytest.raises(J2735Error, match="no J2735 IntersectionID"):
        encode_srm(requests[:1], intersections=IntersectionMap({}), standards=standards)
    spec = codec(standards)
    value = srm_value(requests[:1], intersections=wave[1])
    value["requests"][0]["request"]["requestID"] = 256
    with pytest.raises(Exception, match="256"):
        spec.encode("SignalRequestMessage", value, check_constraints=True)
    # Without the check asn1tools would have encoded it (the silent failure PROVENANCE warns of).
    assert spec.encode("SignalRequestMessage", value, check_constraints=False)


def test_garbage_and_truncated_bytes_are_refused(
    standards: Path, wave: tuple[list[SignalRequest], IntersectionMap]
) -> None:
    requests, table = wave
    data = encode_srm(requests, intersections=table, standards=standards)
    for bad in (b"", data[:5], b"\xff" * 40):
        with pytest.raises(J2735Error):
            decode_srm(bad, intersections=table, standards=standards, now=NOW)


def test_one_srm_speaks_for_one_requester(
    wave: tuple[list[SignalRequest], IntersectionMap],
) -> None:
    requests, table = wave
    other = requests[1].model_copy(
        update={"requester": requests[1].requester.model_copy(update={"unit_id": "AMB-08"})}
    )
    with pytest.raises(J2735Error, match="one requester"):
        srm_value([requests[0], other], intersections=table)


def test_times_across_the_new_year() -> None:
    late = datetime(2026, 12, 31, 23, 59, 59, 999_600, tzinfo=UTC)
    minute, ms = to_minute_ms(late)
    assert from_minute_ms(minute, ms, now=late) == datetime(2027, 1, 1, tzinfo=UTC)
    eve = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    # Heard just after midnight, a message stamped before it is last year's.
    assert from_minute_ms(*to_minute_ms(eve), now=eve + timedelta(seconds=45)) == eve


def test_msg_count_unwraps_to_an_increasing_sequence() -> None:
    assert unwrap_msg_count(5, None) == 5
    assert unwrap_msg_count(5, 3) == 5
    assert unwrap_msg_count(1, 127) == 129
    assert unwrap_msg_count(3, 259) == 259  # a repeat of the last message
    assert unwrap_msg_count(2, 259) == 386


def test_station_ids_are_stable_32_bit() -> None:
    a = wire_station_id("120", "AMB-07")
    assert a == wire_station_id("120", "AMB-07") and 0 <= a < 2**32
    assert a != wire_station_id("119", "AMB-07")


def test_published_module_includes_the_standins(standards: Path) -> None:
    text = published_asn1(standards)
    assert "SignalRequestMessage ::= SEQUENCE" in text
    assert "ITS-Container { itu-t (0)" in text and "Iso3833VehicleType ::= INTEGER (0..255)" in text


def test_the_derived_numbering_is_a_bijection_below_two_to_the_32() -> None:
    derived = DerivedIntersections()
    for node in (0, 42, 65_535, 65_536, 4_294_967_295):
        wire = derived.wire(node)
        assert 0 <= wire.id <= 65_535 and (wire.region is None or 1 <= wire.region <= 65_535)
        assert derived.node(wire.region, wire.id) == node
    assert derived.wire(42).region is None
    with pytest.raises(J2735Error, match="no J2735 IntersectionID"):
        derived.wire(4_817_002_117)  # a newer OSM node id
    with pytest.raises(J2735Error, match="region 0"):
        derived.node(0, 42)


def test_the_road_authoritys_numbering_from_a_list() -> None:
    table = intersections_from_list(
        [
            {"node": 4_817_002_117, "id": 1201, "region": 310},
            {"node": 7, "id": 9, "approaches": {"N": 5, "E": 6, "S": 7, "W": 8}},
        ]
    )
    assert table.wire(4_817_002_117) == WireIntersection(id=1201, region=310)
    assert table.node(None, 9) == 7 and table.wire(7).approaches[ApproachLabel.S] == 7
    for bad, why in (
        ({"node": 1}, "not a JSON list"),
        ([{"node": 1}], "entry 0"),
        ([{"node": 1, "id": 70_000}], "0..65535"),
        ([{"node": 1, "id": 1, "approaches": {"X": 1}}], "entry 0"),
        ([{"node": 1, "id": 1, "approaches": {"N": 16}}], "0..15"),
        ([{"node": 1, "id": 1}, {"node": 1, "id": 2}], "twice"),
    ):
        with pytest.raises(ValueError, match=why):
            intersections_from_list(bad)


def test_the_numbering_setting(tmp_path: Path, settings: Settings) -> None:
    assert isinstance(j2735_intersections(settings), DerivedIntersections)
    good = tmp_path / "j2735.json"
    good.write_text('[{"node": 4817002117, "id": 1201, "region": 310}]', encoding="utf-8")
    table = j2735_intersections(settings.model_copy(update={"j2735_intersections": good}))
    assert table.node(310, 1201) == 4_817_002_117
    bad = tmp_path / "bad.json"
    bad.write_text('{"node": 1}', encoding="utf-8")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(ConfigError, match="j2735_intersections"):
            j2735_intersections(settings.model_copy(update={"j2735_intersections": path}))
