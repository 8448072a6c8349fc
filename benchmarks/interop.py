"""Standards benchmark: the wire cost of J2735 UPER against the JSON the gateway speaks now,
and what validating EIDO and CAP documents costs.

Run by hand from the repository root (not part of the tests)::

    .venv/bin/python benchmarks/interop.py [--repeat 2000]

Every figure of a line is measured in the same run, so read the ratios: UPER SRM/SSM size and
encode+decode time against the same messages as pydantic JSON (the baseline), and the EIDO /
CAP schema checks against building the document they check.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from _common import rss_bytes

from dispatch.interop.cap import CapRequest, MsgType, plan_message, render
from dispatch.interop.eido import Origin, incident_to_eido
from dispatch.interop.j2735 import (
    IntersectionMap,
    WireIntersection,
    decode_srm,
    decode_ssm,
    encode_srm,
    encode_ssm,
)
from dispatch.interop.schemas import cap_schema, eido_schema, resolve_standards_dir
from routing import Router
from routing.arbiter import Arbiter, IntersectionState, SignalDecision
from routing.greenwave import Requester, SignalRequest, VehicleRole, plan_green_wave
from routing.synthetic import synthetic_city

NOW = datetime(2026, 12, 2, 6, 39, 1, tzinfo=UTC)


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Median of 5 batches, microseconds per call."""
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            fn()
        samples.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    standards = resolve_standards_dir()
    router = Router(synthetic_city(20, seed=3))
    g = router.graph
    route = router.route(
        (float(g.node_lat.min()) + 1e-4, float(g.node_lon.min()) + 1e-4),
        (float(g.node_lat.max()) - 1e-4, float(g.node_lon.max()) - 1e-4),
    )
    requester = Requester(
        agency="120", unit_id="AMB-07", role=VehicleRole.AMBULANCE, incident_priority=1
    )
    requests = plan_green_wave(route, departure=NOW, requester=requester).requests[:8]
    table = IntersectionMap(
        {r.intersection_id: WireIntersection(id=1200 + n) for n, r in enumerate(requests)}
    )
    decisions: list[SignalDecision] = []
    for r in requests:
        state = IntersectionState(intersection_id=r.intersection_id)
        decisions += Arbiter().decide(state, r, now=NOW).decisions

    srm = encode_srm(requests, intersections=table, standards=standards)
    ssm = encode_ssm(decisions, intersections=table, standards=standards, now=NOW, sequence=1)
    assert ssm is not None
    srm_json = b"[" + b",".join(r.model_dump_json().encode() for r in requests) + b"]"
    ssm_json = b"[" + b",".join(d.model_dump_json().encode() for d in decisions) + b"]"
    n = args.repeat
    uper_srm = per_call_us(
        lambda: decode_srm(
            encode_srm(requests, intersections=table, standards=standards),
            intersections=table,
            standards=standards,
            now=NOW,
        ),
        n,
    )
    json_srm = per_call_us(
        lambda: [SignalRequest.model_validate_json(r.model_dump_json()) for r in requests], n
    )
    uper_ssm = per_call_us(
        lambda: decode_ssm(
            encode_ssm(decisions, intersections=table, standards=standards, now=NOW, sequence=1)
            or b"",
            intersections=table,
            standards=standards,
            now=NOW,
        ),
        n,
    )
    json_ssm = per_call_us(
        lambda: [SignalDecision.model_validate_json(d.model_dump_json()) for d in decisions], n
    )
    print(f"{len(requests)} requests of one ambulance, {len(decisions)} decisions (one SRM / SSM)")
    print(f"SRM  size: UPER {len(srm)} B, JSON {len(srm_json)} B, {len(srm) / len(srm_json):.3f}")
    print(
        f"SRM  encode+decode: UPER {uper_srm:.0f} us, JSON {json_srm:.0f} us, "
        f"ratio {uper_srm / json_srm:.2f}"
    )
    print(f"SSM  size: UPER {len(ssm)} B, JSON {len(ssm_json)} B, {len(ssm) / len(ssm_json):.3f}")
    print(
        f"SSM  encode+decode: UPER {uper_ssm:.0f} us, JSON {json_ssm:.0f} us, "
        f"ratio {uper_ssm / json_ssm:.2f}"
    )

    from tests.interop.conftest import joint_incident

    incident = joint_incident()
    origin = Origin()
    eido = eido_schema(standards)
    document = incident_to_eido(incident, origin=origin)
    build = per_call_us(lambda: incident_to_eido(incident, origin=origin), n // 10)
    check = per_call_us(lambda: eido.complaints(document), n // 10)
    print(f"EIDO build {build:.0f} us, schema check {check:.0f} us, ratio {check / build:.1f}")
    cap = cap_schema(standards)
    request = CapRequest(msg_type=MsgType.ALERT, headline="南京东路封闭")

    def make() -> bytes:
        message = plan_message(
            request,
            incident,
            alert=None,
            alert_id="A1",
            sender="s@x",
            sender_names=("甲", "A"),
            now=NOW,
        )
        return render(message)

    xml = make()
    build = per_call_us(make, n // 10)
    check = per_call_us(lambda: cap.complaints(xml), n // 10)
    print(f"CAP  build {build:.0f} us, XSD check {check:.0f} us, ratio {check / build:.1f}")
    print(f"RSS {rss_bytes() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
