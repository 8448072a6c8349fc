// The picture a page keeps: incidents, units, whistles, routes with signal statuses and the
// events seen per incident, loaded from a snapshot and moved on by each event.

import { after } from "./live";
import type { Incident, LegView, LiveEvent, RouteView, Snapshot, Summons, Unit, Whistle } from "./types";

export interface Changes {
  incidents: Set<string>;
  units: Set<string>;
  whistles: Set<string>;
  /** Unit ids whose route was (re)planned or dropped. */
  routes: Set<string>;
  /** [unit id, intersection id, status] of green-wave decisions. */
  signals: [string, number, string][];
  /** Incidents whose timeline grew. */
  timelines: Set<string>;
  /** Whistles to re-read over REST (an alert or a close changes what events do not carry). */
  stale: Set<string>;
}

export function noChanges(): Changes {
  return {
    incidents: new Set(),
    units: new Set(),
    whistles: new Set(),
    routes: new Set(),
    signals: [],
    timelines: new Set(),
    stale: new Set(),
  };
}

const TIMELINE_KEEP = 400;

export class LiveState {
  incidents = new Map<string, Incident>();
  units = new Map<string, Unit>();
  whistles = new Map<string, Whistle>();
  routes = new Map<string, RouteView>();
  timelines = new Map<string, LiveEvent[]>();

  load(snap: Snapshot): void {
    this.incidents = new Map(snap.incidents.map((i) => [i.id, i]));
    this.units = new Map(snap.units.map((u) => [u.id, u]));
    this.whistles = new Map(snap.whistles.map((w) => [w.id, w]));
    // Routes and timelines are re-read by the page after a snapshot (they are not in it).
    this.routes.clear();
    this.timelines.clear();
  }

  whistleOf(incidentId: string): Whistle | undefined {
    const inc = this.incidents.get(incidentId);
    if (inc?.whistle_id) return this.whistles.get(inc.whistle_id);
    for (const w of this.whistles.values()) if (w.incident_id === incidentId) return w;
    return undefined;
  }

  /** Merge a full audit trail (REST) with what was seen live: by id, in order, once. */
  mergeTimeline(incidentId: string, events: LiveEvent[]): void {
    const seen = new Map<string, LiveEvent>();
    for (const e of this.timelines.get(incidentId) ?? []) seen.set(e.id, e);
    for (const e of events) seen.set(e.id, e);
    const merged = [...seen.values()].sort((a, b) => (after(a.id, b.id) ? 1 : -1));
    this.timelines.set(incidentId, merged.slice(-TIMELINE_KEEP));
  }

  private putIncident(inc: Incident, ch: Changes): void {
    const old = this.incidents.get(inc.id);
    if (old && old.version > inc.version) return;
    if (inc.status === "closed") this.incidents.delete(inc.id);
    else this.incidents.set(inc.id, inc);
    ch.incidents.add(inc.id);
  }

  private putSummons(whistleId: string, s: Summons, ch: Changes): void {
    const w = this.whistles.get(whistleId);
    if (!w) {
      ch.stale.add(whistleId);
      return;
    }
    const i = w.summons.findIndex((x) => x.id === s.id);
    if (i >= 0) w.summons[i] = s;
    else w.summons.push(s);
    ch.whistles.add(whistleId);
  }

  apply(ev: LiveEvent, ch: Changes = noChanges()): Changes {
    const d = ev.data ?? {};
    if (ev.incident_id) {
      const list = this.timelines.get(ev.incident_id) ?? [];
      list.push(ev);
      if (list.length > TIMELINE_KEEP) list.shift();
      this.timelines.set(ev.incident_id, list);
      ch.timelines.add(ev.incident_id);
    }
    switch (ev.type) {
      case "incident.created":
      case "incident.merged":
      case "incident.call_added":
      case "incident.updated":
      case "incident.split":
      case "incident.closed":
        if (d.incident?.id && Array.isArray(d.incident.calls)) this.putIncident(d.incident as Incident, ch);
        if (ev.type === "incident.closed" && ev.incident_id) {
          for (const [unitId, r] of this.routes) {
            if (r.incident_id === ev.incident_id) {
              this.routes.delete(unitId);
              ch.routes.add(unitId);
            }
          }
        }
        break;
      case "whistle.sounded":
        if (d.whistle?.id) {
          this.whistles.set(d.whistle.id, d.whistle as Whistle);
          ch.whistles.add(d.whistle.id);
          const inc = ev.incident_id ? this.incidents.get(ev.incident_id) : undefined;
          if (inc) {
            inc.whistle_id = d.whistle.id;
            ch.incidents.add(inc.id);
          }
        }
        break;
      case "whistle.summons":
      case "whistle.ack":
      case "whistle.stand_down":
        if (d.whistle_id && d.summons?.id) this.putSummons(d.whistle_id, d.summons as Summons, ch);
        break;
      case "whistle.alert":
      case "whistle.closed":
      case "greenwave.enabled":
        if (d.whistle_id) ch.stale.add(d.whistle_id);
        if (ev.type === "greenwave.enabled") this.protect(ev.incident_id, d.units, ch);
        break;
      case "assignment.created": {
        const inc = ev.incident_id ? this.incidents.get(ev.incident_id) : undefined;
        if (inc && d.unit_id && !inc.assignments.some((a) => a.unit_id === d.unit_id)) {
          inc.assignments.push({
            unit_id: d.unit_id,
            agency: d.agency,
            unit_type: d.unit_type,
            assigned_at: ev.ts,
            eta_s: d.eta_s ?? null,
            hospital_id: d.hospital?.id ?? null,
            status: "dispatched",
          });
          if (inc.status === "open") inc.status = "dispatched";
          ch.incidents.add(inc.id);
        }
        const unit = d.unit_id ? this.units.get(d.unit_id) : undefined;
        if (unit) {
          unit.status = "dispatched";
          unit.incident_id = ev.incident_id;
          ch.units.add(unit.id);
        }
        if (d.unit_id && ev.incident_id) {
          const r = this.routes.get(d.unit_id);
          if (!r || r.incident_id !== ev.incident_id) {
            this.routes.set(d.unit_id, {
              incident_id: ev.incident_id,
              unit_id: d.unit_id,
              agency: d.agency,
              unit_type: d.unit_type,
              assigned_at: ev.ts,
              active_leg: "scene",
              greenwave_active: false,
              hospital: d.hospital ?? null,
              legs: [],
            });
            ch.routes.add(d.unit_id);
          }
        }
        break;
      }
      case "route.planned": {
        const r = d.unit_id ? this.routes.get(d.unit_id) : undefined;
        if (r && d.route) {
          const leg: LegView = {
            kind: d.leg,
            coordinates: d.route.coordinates,
            duration_s: d.route.duration_s,
            distance_m: d.route.distance_m,
            signals: (d.route.signals ?? []).map(
              (s: { node_id: number; lat: number; lon: number; eta_s: number }) => ({
                intersection_id: s.node_id,
                lat: s.lat,
                lon: s.lon,
                route_eta_s: s.eta_s,
                status: "planned",
              }),
            ),
          };
          r.legs = r.legs.filter((l) => l.kind !== leg.kind).concat([leg]);
          ch.routes.add(r.unit_id);
        }
        break;
      }
      case "greenwave.planned":
      case "greenwave.activated": {
        const r = d.unit_id ? this.routes.get(d.unit_id) : undefined;
        if (r && ev.type === "greenwave.activated") r.greenwave_active = true;
        if (r && ev.type === "greenwave.planned" && d.active) r.greenwave_active = true;
        if (r) ch.routes.add(r.unit_id);
        break;
      }
      case "greenwave.request":
      case "greenwave.update":
      case "greenwave.cancel":
      case "greenwave.status": {
        const unitId: string | undefined = d.unit_id;
        const node = Number(d.intersection_id);
        if (unitId && Number.isFinite(node) && typeof d.status === "string") {
          const r = this.routes.get(unitId);
          if (r) {
            for (const leg of r.legs) for (const s of leg.signals) if (s.intersection_id === node) s.status = d.status;
          }
          ch.signals.push([unitId, node, d.status]);
        }
        break;
      }
      case "unit.updated":
        if (d.unit?.id) {
          const old = this.units.get(d.unit.id);
          if (!old || old.version <= d.unit.version) {
            this.units.set(d.unit.id, { ...(d.unit as Unit), position: d.unit.position ?? old?.position ?? null });
            ch.units.add(d.unit.id);
          }
        }
        break;
      case "unit.status": {
        const unit = d.unit_id ? this.units.get(d.unit_id) : undefined;
        if (unit && typeof d.status === "string") {
          unit.status = d.status;
          if (d.status === "available" || d.status === "out_of_service") unit.incident_id = null;
          ch.units.add(unit.id);
        }
        const r = d.unit_id ? this.routes.get(d.unit_id) : undefined;
        if (r) {
          if (d.status === "available" || d.status === "out_of_service" || d.status === "returning") {
            this.routes.delete(r.unit_id);
          } else if (d.status === "on_scene" || d.status === "at_hospital") {
            r.active_leg = null;
          } else if (d.status === "transporting") {
            r.active_leg = "transport";
          }
          ch.routes.add(r.unit_id);
        }
        const inc = ev.incident_id ? this.incidents.get(ev.incident_id) : undefined;
        const a = inc?.assignments.find((x) => x.unit_id === d.unit_id);
        if (inc && a) {
          a.status = d.status;
          ch.incidents.add(inc.id);
        }
        break;
      }
    }
    return ch;
  }

  private protect(incidentId: string | null, units: unknown, ch: Changes): void {
    if (!incidentId || !Array.isArray(units)) return;
    for (const u of units) {
      const r = this.routes.get(String(u));
      if (r && r.incident_id === incidentId) {
        r.greenwave_active = true;
        ch.routes.add(r.unit_id);
      }
    }
  }

  /** Apply a position frame's units; returns the ids that moved. */
  positions(units: { unit_id: string; lat: number; lon: number; at: string; speed_kph?: number; heading_deg?: number }[]): string[] {
    const moved: string[] = [];
    for (const p of units) {
      const u = this.units.get(p.unit_id);
      if (!u) continue;
      u.position = { lat: p.lat, lon: p.lon, at: p.at, speed_kph: p.speed_kph, heading_deg: p.heading_deg };
      moved.push(p.unit_id);
    }
    return moved;
  }
}
