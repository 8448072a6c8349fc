// The crew terminal (`/terminal`, tablet 1024x768 or phone 390x844): the current assignment,
// the route with the vehicle's own position, the signals ahead and whether each is granted,
// status buttons and the destination hospital. Sends the browser's position when allowed.
// A property security team (role `property`) sees the incidents of its own compounds here.

import "leaflet/dist/leaflet.css";
import "./style.css";
import "./terminal.css";

import type { Api } from "./api";
import { coalesce, fmtDuration, h, toast } from "./dom";
import { onLang, t, tStatus, tType, tUnitType } from "./i18n";
import { Live } from "./live";
import { BaseMap, IncidentLayer, L, RouteLayer, SIGNAL_COLOUR } from "./map";
import { boot, linkBanner, topBar } from "./shell";
import { LiveState, noChanges } from "./state";
import type { Me, RouteView, ServerMessage, SignalView } from "./types";

const STATUS_BUTTONS = ["en_route", "on_scene", "transporting", "at_hospital", "available"] as const;
const GPS_MIN_INTERVAL_MS = 1000;

function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const r = 6_371_000;
  const p1 = (lat1 * Math.PI) / 180;
  const p2 = (lat2 * Math.PI) / 180;
  const dp = p2 - p1;
  const dl = ((lon2 - lon1) * Math.PI) / 180;
  const a = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  return 2 * r * Math.asin(Math.sqrt(a));
}

class Terminal {
  readonly state = new LiveState();
  readonly live: Live;
  readonly base: BaseMap;
  readonly routes: RouteLayer;
  readonly incidents: IncidentLayer;
  private me_marker: L.CircleMarker | null = null;
  private own: { lat: number; lon: number } | null = null;
  private eta_s: number | null = null;
  private watch: number | null = null;
  private lastSent = 0;
  private refs = 0;
  private readonly panel: HTMLElement;
  private readonly buttons: HTMLElement;
  private readonly bar;
  private readonly banner;
  private readonly render = coalesce(() => this.paint());
  private fitted: string | null = null;

  constructor(
    readonly api: Api,
    readonly me: Me,
  ) {
    this.bar = topBar("terminal", me);
    this.banner = linkBanner();
    this.panel = h("section", { class: "t-panel", id: "t-panel", "aria-live": "polite" });
    this.buttons = h("nav", { class: "t-buttons", id: "t-buttons" });
    const mapEl = h("div", { class: "t-map", id: "map" });
    const main = h("main", { class: `terminal${me.role === "property" ? " property" : ""}` }, this.panel, mapEl, this.buttons);
    document.body.replaceChildren(this.bar.el, this.banner.el, main);
    this.base = new BaseMap(mapEl, api, me, { compact: window.innerWidth < 600 });
    this.routes = new RouteLayer(this.base);
    this.incidents = new IncidentLayer(this.base);
    this.live = new Live(api, {
      snapshot: (s) => {
        this.state.load(s);
        const unit = this.state.units.get(me.sub);
        if (unit?.position && !this.own) this.own = { lat: unit.position.lat, lon: unit.position.lon };
        this.incidents.clear();
        for (const inc of this.state.incidents.values()) this.incidents.set(inc);
        void this.loadAssignment();
        this.render();
      },
      event: (e) => {
        const ch = this.state.apply(e, noChanges());
        for (const id of ch.incidents) {
          const inc = this.state.incidents.get(id);
          if (inc) this.incidents.set(inc);
          else this.incidents.remove(id);
        }
        if (ch.routes.size || e.type === "assignment.created") {
          const r = this.state.routes.get(me.sub);
          if (r && r.legs.length) this.routes.set(r);
          else if (!r) this.routes.clear();
        }
        for (const [unitId, node, status] of ch.signals) this.routes.signal(unitId, node, status);
        this.render();
      },
      control: (m) => this.onControl(m),
      state: (s) => {
        this.bar.setLink(s, this.live.lastLiveAt);
        this.banner.set(s, this.live.lastLiveAt);
        this.render();
      },
      unauthorized: (reason) => toast(`${t("bad_token")}: ${reason}`, "error"),
    });
    this.live.start();
    onLang(() => this.paint());
    if (me.can.drive) void this.autoGps();
  }

  private async loadAssignment(): Promise<void> {
    if (!this.me.can.drive) return;
    try {
      const mine = await this.api.get<{ unit_id: string; route: RouteView | null }>("/api/console/assignment");
      this.routes.clear();
      if (mine.route) {
        this.state.routes.set(this.me.sub, mine.route);
        this.routes.set(mine.route);
      } else {
        this.state.routes.delete(this.me.sub);
      }
      this.render();
    } catch (err) {
      console.warn("assignment:", err);
    }
  }

  private onControl(m: ServerMessage): void {
    if (m.type === "position.ok") {
      this.eta_s = typeof m.data.eta_s === "number" ? m.data.eta_s : null;
      if (m.data.rerouted) void this.loadAssignment();
      this.render();
    } else if (m.type === "status.ok") {
      toast(`${t("status")}: ${tStatus(m.data.status)}`);
    } else if (m.type === "error") {
      toast(`${t("error")}: ${m.data.message}`, "error");
    }
  }

  // -- position ------------------------------------------------------------------------------
  private async autoGps(): Promise<void> {
    if (!("geolocation" in navigator) || !navigator.permissions) return;
    try {
      const p = await navigator.permissions.query({ name: "geolocation" });
      if (p.state === "granted") this.startGps();
    } catch {
      /* permissions API absent: wait for the button */
    }
  }

  startGps(): void {
    if (this.watch !== null || !("geolocation" in navigator)) return;
    this.watch = navigator.geolocation.watchPosition(
      (pos) => this.onFix(pos),
      (err) => {
        // A fix can be unavailable for a while (a tunnel, a cold start): keep watching; only a
        // refusal ends it.
        if (err.code === err.PERMISSION_DENIED) {
          toast(t("gps_denied"), "error");
          this.stopGps();
        }
      },
      { enableHighAccuracy: true, maximumAge: 1000, timeout: 20_000 },
    );
    this.render();
  }

  stopGps(): void {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
    this.render();
  }

  private onFix(pos: GeolocationPosition): void {
    this.own = { lat: pos.coords.latitude, lon: pos.coords.longitude };
    this.render();
    const now = Date.now();
    if (now - this.lastSent < GPS_MIN_INTERVAL_MS) return;
    const c = pos.coords;
    const sent = this.live.send({
      type: "position",
      lat: c.latitude,
      lon: c.longitude,
      speed_kph: c.speed !== null && c.speed >= 0 ? Math.min(400, c.speed * 3.6) : null,
      heading_deg: c.heading !== null && Number.isFinite(c.heading) && c.heading >= 0 && c.heading < 360 ? c.heading : null,
      at: new Date(pos.timestamp).toISOString(),
      ref: `p${++this.refs}`,
    });
    if (sent) this.lastSent = now;
  }

  setStatus(status: string): void {
    if (!this.live.send({ type: "status", status, ref: `s${++this.refs}` })) {
      toast(t("not_connected"), "error");
    }
  }

  // -- rendering ---------------------------------------------------------------------------------
  private paint(): void {
    if (this.me.role === "property") {
      this.paintProperty();
      return;
    }
    const unit = this.state.units.get(this.me.sub);
    const route = this.state.routes.get(this.me.sub);
    const inc = unit?.incident_id ? this.state.incidents.get(unit.incident_id) : route ? this.state.incidents.get(route.incident_id) : undefined;
    // Parked on scene, an ambulance's next drive is the transport leg: show that one.
    const leg =
      route?.legs.find((l) => l.kind === route.active_leg) ??
      (route?.active_leg === null ? route.legs.find((l) => l.kind === "transport") : undefined) ??
      route?.legs[0];
    if (this.own) {
      if (!this.me_marker) {
        this.me_marker = L.circleMarker([this.own.lat, this.own.lon], {
          renderer: this.base.unitRenderer,
          radius: 9,
          color: "#fff",
          weight: 3,
          fillColor: "#3b82f6",
          fillOpacity: 1,
        })
          .bindTooltip(t("my_position"))
          .addTo(this.base.map);
      } else {
        this.me_marker.setLatLng([this.own.lat, this.own.lon]);
      }
    }
    if (route && leg && this.fitted !== `${route.incident_id}:${leg.kind}` && leg.coordinates.length > 1) {
      this.fitted = `${route.incident_id}:${leg.kind}`;
      this.base.map.invalidateSize();
      this.base.map.fitBounds(L.latLngBounds(leg.coordinates.map(([lon, lat]) => [lat, lon] as [number, number])), { padding: [30, 30] });
    }
    const head = h(
      "div",
      { class: "t-unit" },
      h("b", {}, unit?.callsign ?? this.me.sub),
      unit ? ` · ${tUnitType(unit.type)} · ` : " · ",
      h("span", { class: `t-status st-${unit?.status ?? "unknown"}`, id: "unit-status" }, unit ? tStatus(unit.status) : "—"),
    );
    const job = inc
      ? h(
          "div",
          { class: "t-job", id: "t-job" },
          h("h2", {}, inc.call_types.map(tType).join(" / ")),
          h("div", { class: "sub" }, `${inc.id} · ${t("priority")} ${inc.priority}`),
          h("div", { class: "sub" }, inc.address ?? `${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`),
          leg ? h("div", { class: "t-eta" }, `${t("eta")} ${fmtDuration(this.eta_s ?? leg.duration_s)} · ${(leg.distance_m / 1000).toFixed(1)} km`) : null,
          route?.greenwave_active ? h("span", { class: "chip go" }, t("greenwave_active")) : null,
          route?.hospital ? h("div", { class: "t-hospital", id: "t-hospital" }, `${t("hospital")}: ${route.hospital.name}`) : null,
        )
      : h("div", { class: "t-job idle", id: "t-job" }, t("no_assignment"));
    const ahead = leg ? this.signalsAhead(leg.signals) : [];
    const signals = leg
      ? h(
          "div",
          { class: "t-signals", id: "t-signals" },
          h("h3", {}, t("next_signals")),
          ahead.length
            ? h(
                "ol",
                {},
                ...ahead.map(([s, d]) =>
                  h(
                    "li",
                    { "data-node": s.intersection_id, "data-status": s.status, class: `sig-row sig-${s.status}` },
                    h("span", { class: "sig", style: `background:${SIGNAL_COLOUR[s.status] ?? "#94a3b8"}` }),
                    h("span", {}, `#${s.intersection_id}`),
                    h("span", { class: "d" }, d === null ? "" : `${Math.round(d)} m`),
                    h("b", {}, tStatus(s.status)),
                  ),
                ),
              )
            : h("p", { class: "hint" }, t("no_signals")),
        )
      : null;
    const gps = this.me.can.drive
      ? h(
          "button",
          { id: "gps-button", class: this.watch !== null ? "go" : "secondary", onclick: () => (this.watch === null ? this.startGps() : this.stopGps()) },
          this.watch !== null ? t("gps_on") : t("use_gps"),
        )
      : null;
    this.panel.replaceChildren(head, job, signals ?? "", gps ?? "");
    const showTransport = Boolean(route?.hospital || unit?.type === "ambulance");
    this.buttons.replaceChildren(
      ...STATUS_BUTTONS.filter((s) => showTransport || (s !== "transporting" && s !== "at_hospital")).map((s) =>
        h(
          "button",
          {
            class: `status-btn${unit?.status === s ? " current" : ""}`,
            "data-status": s,
            disabled: !this.me.can.drive || this.live.state !== "live",
            onclick: () => this.setStatus(s),
          },
          tStatus(s),
        ),
      ),
    );
  }

  private signalsAhead(signals: SignalView[]): [SignalView, number | null][] {
    const left = signals.filter((s) => s.status !== "passed" && s.status !== "cancelled" && s.status !== "served");
    return left.slice(0, 6).map((s) => [s, this.own ? distanceM(this.own.lat, this.own.lon, s.lat, s.lon) : null]);
  }

  private paintProperty(): void {
    const list = [...this.state.incidents.values()];
    this.panel.replaceChildren(
      h("h2", {}, t("compound_incidents")),
      h("div", { class: "sub" }, this.me.can.compounds.join(", ")),
      list.length
        ? h(
            "ul",
            { class: "t-incidents", id: "t-incidents" },
            ...list.map((i) => h("li", { "data-id": i.id }, h("b", {}, i.call_types.map(tType).join(" / ")), ` · ${tStatus(i.status)}`, h("div", { class: "sub" }, i.address ?? i.id))),
          )
        : h("p", { class: "hint" }, t("no_incidents")),
    );
    this.buttons.replaceChildren();
  }
}

void boot("terminal", (api, me) => {
  const term = new Terminal(api, me);
  window.yishao = { terminal: term, link: () => term.live.state, reconnect: () => term.live.reconnect() };
});
