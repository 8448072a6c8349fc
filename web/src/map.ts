// The map: Leaflet on canvas (no WebGL needed, so it draws on any command-centre PC and in
// headless Chromium), roads from the service's own graph (/api/map, simplified by zoom), an
// optional raster tile server, and the layers every page shares: routes with their signals,
// incidents, units moving smoothly between position frames, hospitals and stations.

import L from "leaflet";
import "leaflet/dist/leaflet.css";

import type { Api } from "./api";
import { onLang, t, tAgency, tStatus, tType, tUnitType } from "./i18n";
import type { Incident, LegView, Me, Places, RouteView } from "./types";

export const AGENCY_COLOUR: Record<string, string> = {
  police: "#60a5fa",
  traffic: "#38bdf8",
  ems: "#34d399",
  fire: "#fb923c",
  property: "#c4b5fd",
};

export const SIGNAL_COLOUR: Record<string, string> = {
  planned: "#94a3b8",
  requested: "#facc15",
  processing: "#facc15",
  granted: "#22c55e",
  served: "#2dd4bf",
  rejected: "#ef4444",
  cancelled: "#64748b",
  passed: "#475569",
};

const INCIDENT_COLOUR: Record<string, string> = {
  open: "#ef4444",
  dispatched: "#f59e0b",
  on_scene: "#a855f7",
  closed: "#64748b",
};

// An incident's ring says what kind of emergency it is; its fill says where it stands.
const TYPE_RING: Record<string, string> = {
  critical_patient: "#34d399",
  drowning: "#34d399",
  fall_from_height: "#34d399",
  fire: "#fb923c",
  natural_disaster: "#fb923c",
  traffic_accident: "#38bdf8",
  traffic_accident_entrapment: "#38bdf8",
};
const POLICE_RING = "#c4b5fd";

function ringOf(incident: Incident): string {
  for (const t of incident.call_types) if (TYPE_RING[t]) return TYPE_RING[t];
  return POLICE_RING;
}

/** A small key to the map's colours (incident status, incident kind, signal status). */
export function addLegend(map: L.Map): void {
  const Legend = L.Control.extend({
    onAdd() {
      const div = L.DomUtil.create("div", "legend");
      div.id = "legend";
      const dot = (c: string, ring = "#fff") => `<i style="background:${c};border-color:${ring}"></i>`;
      const paint = () => {
        div.innerHTML =
          `<div>${t("incident")}: ${dot(INCIDENT_COLOUR.open)}${tStatus("open")} ${dot(INCIDENT_COLOUR.dispatched)}${tStatus("dispatched")} ${dot(INCIDENT_COLOUR.on_scene)}${tStatus("on_scene")}</div>` +
          `<div>${dot("#0b1220", TYPE_RING.critical_patient)}120 ${dot("#0b1220", TYPE_RING.fire)}119 ${dot("#0b1220", TYPE_RING.traffic_accident)}122 ${dot("#0b1220", POLICE_RING)}110</div>` +
          `<div>${t("greenwave")}: ${["planned", "requested", "granted", "served", "rejected"].map((k) => `${dot(SIGNAL_COLOUR[k], "#0b1220")}${tStatus(k)}`).join(" ")}</div>`;
      };
      paint();
      onLang(paint);
      return div;
    },
  });
  new Legend({ position: "bottomleft" }).addTo(map);
}

const ROAD_WIDTH = [4, 3.2, 2.6, 2, 1.6, 1.1];
const ROAD_COLOUR = ["#8aa0b8", "#7890a8", "#66809a", "#56708a", "#4a6078", "#3c5068"];

function pane(map: L.Map, name: string, z: number): string {
  const p = map.createPane(name);
  p.style.zIndex = String(z);
  return name;
}

export interface MapOptions {
  /** The small map of a phone page: no zoom buttons. */
  compact?: boolean;
}

export class BaseMap {
  readonly map: L.Map;
  private roads: L.GeoJSON;
  private fetched: { zoom: number; box: L.LatLngBounds } | null = null;
  private abort: AbortController | null = null;
  readonly routeRenderer: L.Canvas;
  readonly incidentRenderer: L.Canvas;
  readonly unitRenderer: L.Canvas;
  readonly placeRenderer: L.Canvas;
  private roadTimer: number | null = null;

  constructor(
    container: HTMLElement,
    private readonly api: Api,
    me: Me,
    opts: MapOptions = {},
  ) {
    this.map = L.map(container, {
      preferCanvas: true,
      zoomControl: !opts.compact,
      attributionControl: true,
      minZoom: 10,
      maxZoom: 19,
      zoomSnap: 0.5,
      keyboard: false, // the pages use the keys for the queue
    });
    this.map.attributionControl.setPrefix(false);
    this.map.attributionControl.addAttribution(
      me.map.tile_attribution ?? "© OpenStreetMap contributors",
    );
    const roadPane = pane(this.map, "roads", 300);
    this.routeRenderer = L.canvas({ pane: pane(this.map, "routes", 420), padding: 0.3 });
    this.placeRenderer = L.canvas({ pane: pane(this.map, "places", 440), padding: 0.3 });
    this.incidentRenderer = L.canvas({ pane: pane(this.map, "incidents", 460), padding: 0.3 });
    // Redrawn on every glide step: keep the canvas close to the view's size.
    this.unitRenderer = L.canvas({ pane: pane(this.map, "units", 480), padding: 0.05 });
    if (me.map.tile_url) {
      L.tileLayer(me.map.tile_url, { maxZoom: 19 }).addTo(this.map);
    }
    this.roads = L.geoJSON(undefined, {
      renderer: L.canvas({ pane: roadPane, padding: 0.5 }),
      interactive: false,
      style: (f) => {
        const r = Math.min(5, Number(f?.properties?.r ?? 5));
        return {
          color: ROAD_COLOUR[r],
          weight: ROAD_WIDTH[r] * (this.map.getZoom() >= 16 ? 1.6 : 1),
          opacity: me.map.tile_url ? 0.5 : 1,
          lineCap: "round",
          lineJoin: "round",
        };
      },
    } as L.GeoJSONOptions).addTo(this.map);
    const b = me.map.bounds;
    if (b) {
      this.map.fitBounds(
        [
          [b[1], b[0]],
          [b[3], b[2]],
        ],
        { padding: [10, 10] },
      );
    } else {
      this.map.setView([31.23, 121.47], 13);
    }
    this.map.on("moveend", () => this.queueRoads());
    this.queueRoads();
  }

  private queueRoads(): void {
    if (this.roadTimer !== null) clearTimeout(this.roadTimer);
    this.roadTimer = window.setTimeout(() => void this.loadRoads(), 120);
  }

  /** Fetch the roads for this view unless what we have already covers it at this zoom. */
  private async loadRoads(): Promise<void> {
    const zoom = Math.round(this.map.getZoom());
    const view = this.map.getBounds();
    if (this.fetched && this.fetched.zoom === zoom && this.fetched.box.contains(view)) return;
    const box = view.pad(0.6);
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const bbox = [box.getWest(), box.getSouth(), box.getEast(), box.getNorth()]
      .map((v) => v.toFixed(5))
      .join(",");
    try {
      const data = await this.api.get<GeoJSON.FeatureCollection>(
        `/api/map?zoom=${zoom}&bbox=${bbox}`,
        abort.signal,
      );
      if (abort.signal.aborted) return;
      this.roads.clearLayers();
      this.roads.addData(data);
      this.fetched = { zoom, box };
      this.map.getContainer().dataset.roads = String(data.features.length);
    } catch (err) {
      if ((err as Error).name === "AbortError") return;
      // The service may be restarting: try again shortly, or the map stays blank.
      console.warn("roads:", err);
      if (this.abort === abort) this.roadTimer = window.setTimeout(() => void this.loadRoads(), 3000);
    }
  }

  async loadPlaces(): Promise<void> {
    const places = await this.api.get<Places>("/api/map/places");
    for (const h of places.hospitals) {
      L.circleMarker([h.lat, h.lon], {
        renderer: this.placeRenderer,
        radius: 7,
        color: "#f8fafc",
        weight: 2,
        fillColor: "#dc2626",
        fillOpacity: 1,
      })
        .bindTooltip(`${t("hospital")} · ${h.name}`)
        .addTo(this.map);
    }
    for (const s of places.stations) {
      L.circleMarker([s.lat, s.lon], {
        renderer: this.placeRenderer,
        radius: 5,
        color: AGENCY_COLOUR[s.agency] ?? "#fff",
        weight: 2,
        fillColor: "#0f172a",
        fillOpacity: 1,
      })
        .bindTooltip(`${tAgency(s.agency)} · ${s.name} (${s.units.length})`)
        .addTo(this.map);
    }
  }
}

// -- incidents ------------------------------------------------------------------------------------

export class IncidentLayer {
  private markers = new Map<string, L.CircleMarker>();
  private kinds = new Map<string, string>();
  private selected: string | null = null;

  constructor(
    private readonly base: BaseMap,
    private readonly onPick?: (id: string) => void,
  ) {}

  set(incident: Incident): void {
    if (incident.status === "closed") {
      this.remove(incident.id);
      return;
    }
    const colour = INCIDENT_COLOUR[incident.status] ?? "#ef4444";
    let m = this.markers.get(incident.id);
    const label = `${incident.id} · ${incident.call_types.map(tType).join(" / ")} · ${tStatus(incident.status)}`;
    if (!m) {
      m = L.circleMarker([incident.lat, incident.lon], {
        renderer: this.base.incidentRenderer,
        radius: 10,
        weight: 4,
        color: ringOf(incident),
        fillColor: colour,
        fillOpacity: 0.95,
      });
      m.bindTooltip(label);
      const id = incident.id;
      m.on("click", () => this.onPick?.(id));
      m.addTo(this.base.map);
      this.markers.set(incident.id, m);
    } else {
      m.setLatLng([incident.lat, incident.lon]);
      m.setTooltipContent(label);
    }
    const selected = incident.id === this.selected;
    m.setStyle({ fillColor: colour, color: selected ? "#facc15" : ringOf(incident), weight: selected ? 6 : 4 });
    this.kinds.set(incident.id, ringOf(incident));
  }

  remove(id: string): void {
    this.markers.get(id)?.remove();
    this.markers.delete(id);
  }

  clear(): void {
    for (const m of this.markers.values()) m.remove();
    this.markers.clear();
  }

  select(id: string | null): void {
    if (this.selected) {
      this.markers.get(this.selected)?.setStyle({ color: this.kinds.get(this.selected) ?? "#fff", weight: 4 });
    }
    this.selected = id;
    if (id) {
      const m = this.markers.get(id);
      m?.setStyle({ color: "#facc15", weight: 6 });
      m?.bringToFront();
    }
  }
}

// -- units --------------------------------------------------------------------------------------------

interface Track {
  marker: L.CircleMarker;
  drawnLat: number;
  drawnLon: number;
  fromLat: number;
  fromLon: number;
  toLat: number;
  toLon: number;
  t0: number;
  agency: string;
  status: string;
}

const MOVE_MS = 1000; // one position frame a second: glide over one frame's time
// Redrawing thousands of markers at 60 Hz would eat the page; past a few hundred moving units
// the glide steps ten times a second, which still reads as motion on a city map.
const SMOOTH_UP_TO = 300;
const STEP_MS = 100;

/** Unit markers on one canvas, each gliding from where it is drawn to its newest fix. */
export class UnitLayer {
  readonly tracks = new Map<string, Track>();
  private moving = new Set<string>();
  private raf: number | null = null;
  /** Frames drawn and time spent moving markers (for the benchmark). */
  readonly stats = { frames: 0, moveMs: 0 };

  constructor(
    private readonly base: BaseMap,
    private readonly label?: (unitId: string) => string,
  ) {
    // Steps smaller than half a pixel were skipped: after zooming in, put every unit that is
    // not gliding exactly where its last fix is.
    base.map.on("zoomend", () => {
      for (const [id, t] of this.tracks) {
        if (this.moving.has(id) || (t.drawnLat === t.toLat && t.drawnLon === t.toLon)) continue;
        t.marker.setLatLng([t.toLat, t.toLon]);
        t.drawnLat = t.toLat;
        t.drawnLon = t.toLon;
      }
    });
  }

  private style(agency: string, status: string, highlight: boolean): L.CircleMarkerOptions {
    const busy = status !== "available" && status !== "out_of_service";
    return {
      radius: highlight ? 8 : busy ? 6 : 4,
      color: highlight ? "#facc15" : busy ? "#f8fafc" : AGENCY_COLOUR[agency] ?? "#fff",
      weight: highlight ? 3 : busy ? 2 : 1,
      fillColor: AGENCY_COLOUR[agency] ?? "#fff",
      fillOpacity: busy ? 1 : 0.45,
      opacity: status === "out_of_service" ? 0.3 : 1,
    };
  }

  /** Place or restyle a unit (no animation: a snapshot or a status change). */
  put(id: string, agency: string, status: string, lat: number, lon: number, highlight = false): void {
    const track = this.tracks.get(id);
    if (!track) {
      const marker = L.circleMarker([lat, lon], {
        renderer: this.base.unitRenderer,
        ...this.style(agency, status, highlight),
      });
      if (this.label) {
        const label = this.label;
        marker.bindTooltip(() => label(id));
      }
      marker.addTo(this.base.map);
      this.tracks.set(id, { marker, drawnLat: lat, drawnLon: lon, fromLat: lat, fromLon: lon, toLat: lat, toLon: lon, t0: 0, agency, status });
      return;
    }
    if (track.status !== status || track.agency !== agency || highlight) {
      track.status = status;
      track.agency = agency;
      track.marker.setStyle(this.style(agency, status, highlight));
    }
  }

  restyle(id: string, status: string, highlight = false): void {
    const track = this.tracks.get(id);
    if (!track) return;
    track.status = status;
    track.marker.setStyle(this.style(track.agency, status, highlight));
  }

  /** A new fix: glide there over the next frame interval. */
  moveTo(id: string, lat: number, lon: number, now = performance.now()): void {
    const track = this.tracks.get(id);
    if (!track) return;
    // From where the glide has got to (not where the marker was last drawn, which may lag by
    // under a pixel), so that a skipped step never makes a unit jump back.
    const f = track.t0 ? Math.min(1, Math.max(0, (now - track.t0) / MOVE_MS)) : 1;
    track.fromLat = track.fromLat + (track.toLat - track.fromLat) * f;
    track.fromLon = track.fromLon + (track.toLon - track.fromLon) * f;
    track.toLat = lat;
    track.toLon = lon;
    track.t0 = now;
    this.moving.add(id);
    if (this.raf === null) this.raf = requestAnimationFrame((t) => this.step(t));
  }

  position(id: string): [number, number] | null {
    const track = this.tracks.get(id);
    if (!track) return null;
    const p = track.marker.getLatLng();
    return [p.lat, p.lng];
  }

  clear(): void {
    for (const t of this.tracks.values()) t.marker.remove();
    this.tracks.clear();
    this.moving.clear();
  }

  private lastStep = 0;

  private step(now: number): void {
    this.raf = null;
    if (this.moving.size > SMOOTH_UP_TO && now - this.lastStep < STEP_MS) {
      this.raf = requestAnimationFrame((t) => this.step(t));
      return;
    }
    this.lastStep = now;
    const started = performance.now();
    // Half a pixel at this zoom, in degrees (Web Mercator; latitude's stretch only makes it
    // smaller): a step that moves a marker less than that would redraw nothing visible.
    const halfPx = 180 / (256 * 2 ** this.base.map.getZoom());
    for (const id of this.moving) {
      const t = this.tracks.get(id);
      if (!t) {
        this.moving.delete(id);
        continue;
      }
      const f = Math.min(1, Math.max(0, (now - t.t0) / MOVE_MS));
      const lat = t.fromLat + (t.toLat - t.fromLat) * f;
      const lon = t.fromLon + (t.toLon - t.fromLon) * f;
      if (Math.abs(lat - t.drawnLat) >= halfPx || Math.abs(lon - t.drawnLon) >= halfPx) {
        t.marker.setLatLng([lat, lon]);
        t.drawnLat = lat;
        t.drawnLon = lon;
      }
      if (f >= 1) this.moving.delete(id);
    }
    this.stats.frames += 1;
    this.stats.moveMs += performance.now() - started;
    if (this.moving.size > 0) this.raf = requestAnimationFrame((t) => this.step(t));
  }
}

// -- routes and signals --------------------------------------------------------------------------------

interface DrawnRoute {
  lines: L.Polyline[];
  signals: Map<number, L.CircleMarker>;
  view: RouteView;
}

/** Assigned units' routes, each signal a dot coloured by its green-wave status. */
export class RouteLayer {
  readonly routes = new Map<string, DrawnRoute>();

  constructor(private readonly base: BaseMap) {}

  set(view: RouteView): void {
    this.remove(view.unit_id);
    const colour = AGENCY_COLOUR[view.agency] ?? "#fff";
    const lines: L.Polyline[] = [];
    const signals = new Map<number, L.CircleMarker>();
    for (const leg of view.legs) {
      const active = view.active_leg === leg.kind;
      lines.push(
        L.polyline(
          leg.coordinates.map(([lon, lat]) => [lat, lon] as [number, number]),
          {
            renderer: this.base.routeRenderer,
            color: colour,
            weight: active ? 5 : 3,
            opacity: active ? 0.9 : 0.45,
            dashArray: leg.kind === "transport" ? "6 6" : undefined,
            interactive: false,
          },
        ).addTo(this.base.map),
      );
      for (const s of leg.signals) {
        const marker = L.circleMarker([s.lat, s.lon], {
          renderer: this.base.routeRenderer,
          radius: 5,
          weight: 2,
          color: "#0b1220",
          fillColor: SIGNAL_COLOUR[s.status] ?? "#94a3b8",
          fillOpacity: 1,
        })
          .bindTooltip(() => `${tUnitType(view.unit_type)} ${view.unit_id} · #${s.intersection_id} · ${tStatus(s.status)}`)
          .addTo(this.base.map);
        signals.set(s.intersection_id, marker);
      }
    }
    this.routes.set(view.unit_id, { lines, signals, view });
  }

  /** A green-wave decision for one of a unit's signals. */
  signal(unitId: string, intersectionId: number, status: string): boolean {
    const r = this.routes.get(unitId);
    if (!r) return false;
    for (const leg of r.view.legs) {
      for (const s of leg.signals) if (s.intersection_id === intersectionId) s.status = status;
    }
    const marker = r.signals.get(intersectionId);
    marker?.setStyle({ fillColor: SIGNAL_COLOUR[status] ?? "#94a3b8" });
    return marker !== undefined;
  }

  /** A newly planned leg (`route.planned`) before its green-wave plan arrives. */
  planned(unitId: string, base: Omit<RouteView, "legs">, leg: LegView): void {
    const r = this.routes.get(unitId);
    const view: RouteView = r && r.view.incident_id === base.incident_id ? r.view : { ...base, legs: [] };
    view.legs = view.legs.filter((l) => l.kind !== leg.kind).concat([leg]);
    this.set(view);
  }

  remove(unitId: string): void {
    const r = this.routes.get(unitId);
    if (!r) return;
    for (const l of r.lines) l.remove();
    for (const m of r.signals.values()) m.remove();
    this.routes.delete(unitId);
  }

  clear(): void {
    for (const id of [...this.routes.keys()]) this.remove(id);
  }
}

export { L };
