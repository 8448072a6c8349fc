// The dispatcher console (`/`): one map for 122, 120 and 119 with every incident, unit, route
// and green wave; the incident queue; the selected incident's timeline, whistle, ack board and
// recommendations; the units; today's figures. Keyboard: ↑/↓ (or j/k) queue, Enter open,
// a assign suggested, 1-9 assign candidate, w whistle, g green wave, Esc back to the queue.

import "./style.css";

import { Api, ApiError } from "./api";
import { ageS, coalesce, fmtDuration, fmtTime, h, toast } from "./dom";
import { onLang, t, tAgency, tEvent, tStatus, tType, tUnitType } from "./i18n";
import { Live } from "./live";
import { addLegend, BaseMap, IncidentLayer, RouteLayer, SIGNAL_COLOUR, UnitLayer } from "./map";
import { PivotLayer } from "./pivots";
import { boot, linkBanner, topBar } from "./shell";
import { LiveState, noChanges, type Changes } from "./state";
import { TIMELINE_HIDDEN } from "./timeline";
import type { Candidate, Incident, LiveEvent, Me, Recommendations, RouteView, TodayFigures, Whistle } from "./types";

const PRIORITY_ORDER = (a: Incident, b: Incident) =>
  a.priority - b.priority || Date.parse(b.created_at) - Date.parse(a.created_at);

class Console {
  readonly state = new LiveState();
  readonly live: Live;
  readonly base: BaseMap;
  readonly incidentsLayer: IncidentLayer;
  readonly unitsLayer: UnitLayer;
  readonly routesLayer: RouteLayer;
  private pivots: PivotLayer | null = null;
  private selected: string | null = null;
  private recs = new Map<string, Recommendations>();
  private candidates: Candidate[] = [];
  private tab: "incidents" | "units" = "incidents";
  private figures: TodayFigures | null = null;
  private readonly els: Record<string, HTMLElement> = {};
  private readonly bar;
  private readonly banner;
  private pendingWhistles = new Set<string>();
  private unitFilter = "";
  /** Events applied (for tests and the benchmark: `window.yishao`). */
  eventsApplied = 0;
  positionFrames = 0;
  /** Ids of the events applied, and of the snapshots loaded (a resync adds one). */
  readonly seenIds: string[] = [];
  readonly snapshots: string[] = [];

  constructor(
    readonly api: Api,
    readonly me: Me,
  ) {
    this.bar = topBar("console", me);
    this.banner = linkBanner();
    const figures = h("div", { class: "figures", id: "figures", "aria-label": t("today") });
    const tabs = h(
      "div",
      { class: "tabs", role: "tablist" },
      h("button", { id: "tab-incidents", role: "tab", class: "tab active", onclick: () => this.showTab("incidents") }, t("incidents")),
      h("button", { id: "tab-units", role: "tab", class: "tab", onclick: () => this.showTab("units") }, t("units")),
    );
    const queue = h("ol", { id: "queue", class: "queue", tabindex: 0, "aria-label": t("incidents") });
    const unitsPanel = h("div", { id: "units-panel", class: "units-panel hidden" });
    const left = h("aside", { class: "left" }, tabs, queue, unitsPanel);
    const mapEl = h("div", { id: "map", class: "map" });
    const detail = h("section", { id: "detail", class: "detail", "aria-live": "polite" });
    const main = h("main", { class: "console" }, left, mapEl, detail);
    document.body.replaceChildren(this.bar.el, this.banner.el, figures, main);
    Object.assign(this.els, { figures, queue, unitsPanel, detail, mapEl });

    this.base = new BaseMap(mapEl, api, me);
    this.incidentsLayer = new IncidentLayer(this.base, (id) => this.select(id, true));
    this.unitsLayer = new UnitLayer(this.base, (id) => this.unitLabel(id));
    this.routesLayer = new RouteLayer(this.base);
    addLegend(this.base.map);
    void this.base.loadPlaces().catch((err) => console.warn("places:", err));
    if (me.can.actions?.["pivots.read"]) {
      this.pivots = new PivotLayer(this.base, api);
      this.pivots.start();
    }

    this.live = new Live(api, {
      snapshot: (s) => this.onSnapshot(s),
      event: (e) => this.onEvent(e),
      control: (m) => {
        if (m.type === "positions") this.onPositions(m.data.units ?? []);
      },
      state: (s) => {
        this.bar.setLink(s, this.live.lastLiveAt);
        this.banner.set(s, this.live.lastLiveAt);
        if (s === "live") void this.loadFigures();
      },
      unauthorized: (reason) => {
        toast(`${t("bad_token")}: ${reason}`, "error");
        setTimeout(() => {
          sessionStorage.clear();
          location.reload();
        }, 1500);
      },
    });
    this.live.start();
    document.addEventListener("keydown", (ev) => this.onKey(ev));
    onLang(() => this.renderAll());
    setInterval(() => this.tick(), 1000);
    setInterval(() => void this.loadFigures(), 15_000);
    void this.loadFigures();
  }

  // -- data in ---------------------------------------------------------------------------------
  private onSnapshot(s: Parameters<LiveState["load"]>[0]): void {
    this.snapshots.push(s.event_id);
    this.state.load(s);
    this.incidentsLayer.clear();
    this.unitsLayer.clear();
    this.routesLayer.clear();
    for (const inc of this.state.incidents.values()) this.incidentsLayer.set(inc);
    for (const u of this.state.units.values()) this.placeUnit(u.id);
    void this.loadRoutes();
    if (this.selected) void this.loadTimeline(this.selected);
    this.renderAll();
  }

  private async loadRoutes(): Promise<void> {
    try {
      const views = await this.api.get<RouteView[]>("/api/console/routes");
      for (const v of views) {
        this.state.routes.set(v.unit_id, v);
        this.routesLayer.set(v);
      }
      this.renderDetail();
    } catch (err) {
      console.warn("routes:", err);
    }
  }

  private readonly changes: Changes = noChanges();
  private readonly flush = coalesce(() => this.applyChanges());

  private onEvent(e: LiveEvent): void {
    if (e.type.startsWith("pivots.")) void this.pivots?.load();
    this.eventsApplied += 1;
    this.seenIds.push(e.id);
    if (this.seenIds.length > 100_000) this.seenIds.splice(0, 50_000);
    this.state.apply(e, this.changes);
    if (e.type === "incident.recommended" && e.incident_id && e.data?.recommendations) {
      this.recs.set(e.incident_id, e.data.recommendations as Recommendations);
    }
    if (e.type === "assignment.created" && e.incident_id) this.recs.delete(e.incident_id);
    this.flush();
  }

  private applyChanges(): void {
    const ch = this.changes;
    for (const id of ch.incidents) {
      const inc = this.state.incidents.get(id);
      if (inc) this.incidentsLayer.set(inc);
      else this.incidentsLayer.remove(id);
    }
    for (const id of ch.units) this.placeUnit(id);
    for (const id of ch.routes) {
      const r = this.state.routes.get(id);
      if (r && r.legs.length) this.routesLayer.set(r);
      else if (!r) this.routesLayer.remove(id);
    }
    for (const [unitId, node, status] of ch.signals) this.routesLayer.signal(unitId, node, status);
    for (const wid of ch.stale) void this.refreshWhistle(wid);
    const sel = this.selected;
    const detailChanged =
      sel !== null &&
      (ch.incidents.has(sel) ||
        ch.timelines.has(sel) ||
        [...ch.whistles].some((w) => this.state.whistles.get(w)?.incident_id === sel) ||
        [...ch.routes].some((u) => this.state.routes.get(u)?.incident_id === sel) ||
        ch.signals.length > 0);
    const queueChanged = ch.incidents.size > 0 || ch.whistles.size > 0;
    if (sel && ch.incidents.has(sel) && !this.state.incidents.has(sel)) this.selected = null;
    Object.assign(this.changes, noChanges());
    if (queueChanged) this.renderQueue();
    if (detailChanged || queueChanged) this.renderDetail();
    if (ch.units.size && this.tab === "units") this.renderUnits();
    this.queueFigures();
  }

  private onPositions(units: { unit_id: string; lat: number; lon: number; at: string }[]): void {
    this.positionFrames += 1;
    const now = performance.now();
    for (const id of this.state.positions(units)) {
      const u = this.state.units.get(id);
      if (!u?.position) continue;
      if (!this.unitsLayer.tracks.has(id)) this.placeUnit(id);
      else this.unitsLayer.moveTo(id, u.position.lat, u.position.lon, now);
    }
  }

  private placeUnit(id: string): void {
    const u = this.state.units.get(id);
    if (!u) return;
    const lat = u.position?.lat ?? u.station_lat;
    const lon = u.position?.lon ?? u.station_lon;
    if (lat === null || lat === undefined || lon === null || lon === undefined) return;
    const highlight = this.selected !== null && u.incident_id === this.selected;
    this.unitsLayer.put(u.id, u.agency, u.status, lat, lon, highlight);
    this.unitsLayer.restyle(u.id, u.status, highlight);
  }

  private unitLabel(id: string): string {
    const u = this.state.units.get(id);
    if (!u) return id;
    const speed = u.position?.speed_kph ? ` · ${Math.round(u.position.speed_kph)} km/h` : "";
    return `${u.callsign ?? u.id} · ${tUnitType(u.type)} · ${tStatus(u.status)}${speed}`;
  }

  private async refreshWhistle(id: string): Promise<void> {
    if (this.pendingWhistles.has(id)) return;
    this.pendingWhistles.add(id);
    try {
      const w = await this.api.get<Whistle>(`/api/whistles/${encodeURIComponent(id)}`);
      this.state.whistles.set(w.id, w);
      this.renderQueue();
      this.renderDetail();
    } catch (err) {
      console.warn("whistle:", err);
    } finally {
      this.pendingWhistles.delete(id);
    }
  }

  private async loadTimeline(id: string): Promise<void> {
    try {
      const events = await this.api.get<LiveEvent[]>(`/api/incidents/${encodeURIComponent(id)}/events`);
      this.state.mergeTimeline(id, events);
      if (this.selected === id) this.renderDetail();
    } catch (err) {
      console.warn("timeline:", err);
    }
  }

  private async loadRecs(id: string): Promise<void> {
    try {
      const recs = await this.api.get<Recommendations>(`/api/incidents/${encodeURIComponent(id)}/recommendations`);
      this.recs.set(id, recs);
      if (this.selected === id) this.renderDetail();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) console.warn("recommendations:", err);
    }
  }

  private figuresTimer: number | null = null;
  private queueFigures(): void {
    if (this.figuresTimer !== null) return;
    this.figuresTimer = window.setTimeout(() => {
      this.figuresTimer = null;
      void this.loadFigures();
    }, 3000);
  }

  private async loadFigures(): Promise<void> {
    try {
      this.figures = await this.api.get<TodayFigures>("/api/console/today");
      this.renderFigures();
    } catch (err) {
      console.warn("figures:", err);
    }
  }

  // -- actions -------------------------------------------------------------------------------------
  select(id: string | null, pan = false): void {
    const changed = id !== this.selected;
    this.selected = id;
    this.incidentsLayer.select(id);
    for (const u of this.state.units.values()) this.placeUnit(u.id);
    if (id && changed) {
      void this.loadTimeline(id);
      if (this.me.can.read_incidents && !this.recs.has(id)) void this.loadRecs(id);
    }
    if (id && pan) this.frame(id);
    this.renderQueue();
    this.renderDetail();
  }

  /** Show the incident with its units' routes, close enough to read the junctions. */
  private frame(id: string): void {
    const inc = this.state.incidents.get(id);
    if (!inc) return;
    const points: [number, number][] = [[inc.lat, inc.lon]];
    for (const r of this.state.routes.values()) {
      if (r.incident_id !== id) continue;
      for (const leg of r.legs) if (leg.kind === "scene") for (const [lon, lat] of leg.coordinates) points.push([lat, lon]);
    }
    if (points.length > 1) this.base.map.fitBounds(points, { padding: [40, 40], maxZoom: 17 });
    else this.base.map.setView([inc.lat, inc.lon], Math.max(this.base.map.getZoom(), 15));
  }

  private async act(label: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      toast(label);
    } catch (err) {
      toast(`${t("error")}: ${err instanceof ApiError ? err.detail : String(err)}`, "error");
    }
  }

  async assign(unitIds: string[]): Promise<void> {
    const id = this.selected;
    if (!id || !unitIds.length || !this.me.can.assign) return;
    await this.act(`${t("assigned")}: ${unitIds.join(", ")}`, () =>
      this.api.post(`/api/incidents/${encodeURIComponent(id)}/assignments`, { unit_ids: unitIds }),
    );
    this.recs.delete(id);
    void this.loadRecs(id);
  }

  async whistle(): Promise<void> {
    const id = this.selected;
    if (!id || !this.me.can.whistle) return;
    const inc = this.state.incidents.get(id);
    if (!inc || inc.whistle_id) return;
    let body: { force?: boolean; reason?: string } = {};
    if (!inc.whistle_eligible) {
      const reason = prompt(t("whistle_force"));
      if (!reason) return;
      body = { force: true, reason };
    }
    await this.act(t("whistle_sounded"), () => this.api.post(`/api/incidents/${encodeURIComponent(id)}/whistle`, body));
  }

  async greenwave(): Promise<void> {
    const id = this.selected;
    if (!id || !this.me.can.greenwave) return;
    await this.act(t("greenwave_active"), () => this.api.post(`/api/incidents/${encodeURIComponent(id)}/greenwave`));
  }

  async close(): Promise<void> {
    const id = this.selected;
    if (!id || !this.me.can.close) return;
    const reason = prompt(t("close_reason"));
    if (!reason) return;
    try {
      // The lead agency closes; another involved agency's close is a request to the lead (202).
      const after = (await this.api.post(`/api/incidents/${encodeURIComponent(id)}/close`, { reason })) as Incident;
      toast(after.status === "closed" ? t("close_incident") : t("close_requested"));
    } catch (err) {
      toast(`${t("error")}: ${err instanceof ApiError ? err.detail : String(err)}`, "error");
    }
  }

  /** Each centre assigns its own units (the service refuses another agency's). */
  private mayAssign(agency: string): boolean {
    return this.me.can.assign && (this.me.role === "admin" || this.me.agency === agency);
  }

  private queueOrder(): Incident[] {
    return [...this.state.incidents.values()].sort(PRIORITY_ORDER);
  }

  private onKey(ev: KeyboardEvent): void {
    const target = ev.target as HTMLElement;
    if (target.closest("input, textarea, select") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const order = this.queueOrder();
    const at = this.selected ? order.findIndex((i) => i.id === this.selected) : -1;
    const key = ev.key;
    if (key === "ArrowDown" || key === "j") {
      const next = order[Math.min(order.length - 1, at + 1)];
      if (next) this.select(next.id);
    } else if (key === "ArrowUp" || key === "k") {
      const prev = order[Math.max(0, at - 1)];
      if (prev) this.select(prev.id);
    } else if (key === "Enter" && this.selected && target.tagName !== "BUTTON") {
      this.select(this.selected, true);
      this.els.detail.focus();
    } else if (key === "Escape") {
      this.select(null);
      this.els.queue.focus();
    } else if (key === "a") {
      const recs = this.selected ? this.recs.get(this.selected) : undefined;
      if (recs) void this.assign(recs.agencies.flatMap((a) => a.suggested));
    } else if (/^[1-9]$/.test(key)) {
      const c = this.candidates[Number(key) - 1];
      if (c) void this.assign([c.unit_id]);
    } else if (key === "w") {
      void this.whistle();
    } else if (key === "g") {
      void this.greenwave();
    } else {
      return;
    }
    ev.preventDefault();
  }

  private showTab(tab: "incidents" | "units"): void {
    this.tab = tab;
    document.getElementById("tab-incidents")?.classList.toggle("active", tab === "incidents");
    document.getElementById("tab-units")?.classList.toggle("active", tab === "units");
    this.els.queue.classList.toggle("hidden", tab !== "incidents");
    this.els.unitsPanel.classList.toggle("hidden", tab !== "units");
    if (tab === "units") this.renderUnits();
  }

  // -- rendering ---------------------------------------------------------------------------------------
  private renderAll(): void {
    document.getElementById("tab-incidents")!.textContent = t("incidents");
    document.getElementById("tab-units")!.textContent = t("units");
    this.renderFigures();
    this.renderQueue();
    this.renderDetail();
    if (this.tab === "units") this.renderUnits();
  }

  private tick(): void {
    // Countdowns and ages move every second; only the parts that show them are redrawn.
    if (this.selected && this.state.whistleOf(this.selected)) this.renderAckBoard();
    // Queue ages in whole minutes: a row's text changes once a minute, not every second.
    for (const el of this.els.queue.querySelectorAll<HTMLElement>("[data-created]")) {
      const text = ageText(el.dataset.created!);
      if (el.textContent !== text) el.textContent = text;
    }
  }

  private renderFigures(): void {
    const f = this.figures;
    const cell = (id: string, label: string, value: string, hint?: string) =>
      h("div", { class: "figure", id, title: hint }, h("span", { class: "value" }, value), h("span", { class: "label" }, label));
    this.els.figures.replaceChildren(
      h("span", { class: "figures-title" }, t("today")),
      cell("f-incidents", t("f_incidents"), f ? String(f.incidents) : "—"),
      cell("f-open", t("f_open"), f ? String(f.open_incidents) : String(this.state.incidents.size)),
      cell("f-whistles", t("f_whistles"), f ? String(f.whistles) : "—"),
      cell("f-arrival", t("f_arrival"), f ? fmtDuration(f.mean_arrival_s) : "—"),
      cell("f-signals", t("f_signals"), f ? String(f.signals_granted) : "—"),
      cell("f-saved", t("f_saved"), f ? fmtDuration(f.saved_s_estimate) : "—", t("f_saved_hint")),
      // The record's figures (/kpis, server-rendered); the token rides in the query as the
      // drill report pages take it (scrubbed from the access log).
      h("a", {
        class: "figures-report", id: "f-report", target: "_blank", rel: "noopener",
        href: `/kpis?token=${encodeURIComponent(this.api.token)}`,
      }, t("f_report")),
    );
  }

  private rows = new Map<string, { sig: string; el: HTMLElement }>();
  private scrolledTo: string | null = null;

  /** The queue, row by row: a row is rebuilt only when what it shows changed, and the list is
   * re-ordered only when the order changed (a busy day has hundreds of rows). */
  private renderQueue(): void {
    const order = this.queueOrder();
    if (!order.length) {
      this.rows.clear();
      this.els.queue.replaceChildren(h("li", { class: "empty" }, t("no_incidents")));
      return;
    }
    const lang = t("whistle");
    const els = order.map((inc) => {
      const w = this.state.whistleOf(inc.id);
      const selected = inc.id === this.selected;
      const sig = [inc.version, inc.status, inc.priority, inc.centres.join(), inc.call_types.join(), inc.address, Boolean(w), selected, lang].join("|");
      const cached = this.rows.get(inc.id);
      if (cached && cached.sig === sig) return cached.el;
      const el = h(
        "li",
        {
          class: `row status-${inc.status}${selected ? " selected" : ""}`,
          "data-id": inc.id,
          "aria-selected": selected ? "true" : "false",
          onclick: () => this.select(inc.id, true),
        },
        h("span", { class: `prio p${inc.priority}` }, `P${inc.priority}`),
        h(
          "span",
          { class: "what" },
          h("b", {}, inc.call_types.map(tType).join(" / ")),
          w ? h("span", { class: "chip whistle-chip" }, t("whistle")) : null,
          h("br"),
          h("small", {}, inc.address ?? `${inc.lat.toFixed(4)}, ${inc.lon.toFixed(4)}`),
        ),
        h(
          "span",
          { class: "meta" },
          h("span", { class: "centres" }, ...inc.centres.map((c) => h("span", { class: `chip centre c${c}` }, c))),
          h("br"),
          h("small", { class: "status" }, tStatus(inc.status)),
          " ",
          h("small", { class: "age", "data-created": inc.created_at }, ageText(inc.created_at)),
        ),
      );
      this.rows.set(inc.id, { sig, el });
      return el;
    });
    if (this.rows.size > order.length) {
      const keep = new Set(order.map((i) => i.id));
      for (const id of this.rows.keys()) if (!keep.has(id)) this.rows.delete(id);
    }
    const current = this.els.queue.children;
    const same = current.length === els.length && els.every((el, i) => current[i] === el);
    if (!same) this.els.queue.replaceChildren(...els);
    // Scrolling forces a layout of the whole list: only when the selection moved.
    if (this.selected !== this.scrolledTo) {
      this.scrolledTo = this.selected;
      this.els.queue.querySelector(".selected")?.scrollIntoView({ block: "nearest" });
    }
  }

  private renderDetail(): void {
    const id = this.selected;
    const inc = id ? this.state.incidents.get(id) : undefined;
    if (!inc) {
      this.els.detail.replaceChildren(h("p", { class: "hint" }, t("select_incident")), this.keyHelp());
      return;
    }
    const w = this.state.whistleOf(inc.id);
    const can = this.me.can;
    const actions = h(
      "div",
      { class: "actions" },
      can.whistle
        ? h(
            "button",
            {
              id: "whistle-button",
              class: `danger${inc.whistle_eligible ? "" : " muted"}`,
              disabled: Boolean(w || inc.whistle_id),
              title: "w",
              onclick: () => void this.whistle(),
            },
            w || inc.whistle_id ? t("whistle_sounded") : t("whistle_sound"),
          )
        : null,
      can.greenwave
        ? h("button", { id: "greenwave-button", class: "go", title: "g", onclick: () => void this.greenwave() }, t("greenwave_on"))
        : null,
      can.close ? h("button", { id: "close-button", class: "secondary", onclick: () => void this.close() }, t("close_incident")) : null,
    );
    const calls = h(
      "ul",
      { class: "calls", id: "calls" },
      ...inc.calls.map((c) =>
        h(
          "li",
          {},
          h("span", { class: `chip centre c${c.centre}` }, c.centre),
          ` ${fmtTime(c.received_at)} ${tType(c.call_type)}`,
          c.description ? h("small", {}, ` · ${c.description}`) : null,
        ),
      ),
    );
    const parts: (HTMLElement | null)[] = [
      h(
        "header",
        { class: "detail-head" },
        h("h2", { id: "detail-title" }, inc.call_types.map(tType).join(" / ")),
        h("div", { class: "sub" }, `${inc.id} · ${tStatus(inc.status)} · ${t("priority")} ${inc.priority}`),
        h("div", { class: "sub" }, inc.address ?? `${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`),
      ),
      actions,
      h("h3", {}, `${t("merged_from")} (${inc.calls.length})`),
      calls,
      w ? h("div", { id: "ack-board", class: "ack-board" }) : null,
      this.recsBlock(inc),
      this.assignedBlock(inc),
      h("h3", {}, t("timeline")),
      this.timelineBlock(inc.id),
    ];
    this.els.detail.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
    if (w) this.renderAckBoard();
  }

  private keyHelp(): HTMLElement {
    return h(
      "dl",
      { class: "keys" },
      ...[
        ["↑ ↓ / j k", t("incidents")],
        ["Enter", t("incident")],
        ["a", t("assign_suggested")],
        ["1-9", t("assign")],
        ["w", t("whistle")],
        ["g", t("greenwave")],
        ["Esc", t("incidents")],
      ].flatMap(([k, v]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, v)]),
    );
  }

  private renderAckBoard(): void {
    const board = document.getElementById("ack-board");
    const id = this.selected;
    const w = id ? this.state.whistleOf(id) : undefined;
    if (!board || !w) return;
    const now = Date.now();
    const rows = w.summons.map((s) => {
      const left = (Date.parse(s.deadline) - now) / 1000;
      const pct = Math.max(0, Math.min(100, (left / w.ack_timeout_s) * 100));
      const waiting = s.status === "pending";
      return h(
        "li",
        { class: `summons s-${s.status}`, "data-summons": s.id },
        h("span", { class: "who" }, h("b", {}, s.coordinator), h("small", {}, ` ${tAgency(s.agency)} · ${s.tier === "primary" ? t("primary") : t("backup")}`)),
        h("span", { class: "state" }, tStatus(s.status)),
        waiting
          ? h("span", { class: "countdown" }, h("span", { class: "bar", style: `width:${pct}%` }), h("span", { class: "secs" }, fmtDuration(left)))
          : h("span", { class: "when" }, s.acked_at ? `${fmtTime(s.acked_at)} (+${fmtDuration(ageS(s.summoned_at, Date.parse(s.acked_at)))})` : ""),
      );
    });
    board.replaceChildren(
      h("h3", {}, `${t("ack_board")} · ${t("sounded_by")} ${w.sounded_by} ${fmtTime(w.sounded_at)}`),
      h("ul", { class: "summons-list" }, ...rows),
      ...w.escalations.map((e) => h("p", { class: `escalation e-${e.kind}` }, `${fmtTime(e.at)} ${tAgency(e.agency)}: ${e.text}`)),
    );
  }

  private recsBlock(inc: Incident): HTMLElement | null {
    if (!this.me.can.read_incidents) return null;
    const recs = this.recs.get(inc.id);
    this.candidates = [];
    if (!recs) return h("div", { class: "recs", id: "recs" }, h("h3", {}, t("recommendations")), h("p", { class: "hint" }, "…"));
    const assigned = new Set(inc.assignments.map((a) => a.unit_id));
    const blocks = recs.agencies.map((a) => {
      const rows = a.candidates
        .filter((c) => !assigned.has(c.unit_id))
        .slice(0, 5)
        .map((c) => {
          this.candidates.push(c);
          const n = this.candidates.length;
          return h(
            "li",
            { class: `cand${a.suggested.includes(c.unit_id) ? " suggested" : ""}`, "data-unit": c.unit_id },
            h("kbd", {}, String(n)),
            h("span", { class: "name" }, `${c.unit_id} · ${tUnitType(c.unit_type)}`),
            h("span", { class: "eta" }, c.reachable ? fmtDuration(c.eta_s) : "✕"),
            this.mayAssign(a.agency)
              ? h("button", { class: "small", "data-assign": c.unit_id, disabled: !c.reachable, onclick: () => void this.assign([c.unit_id]) }, t("assign"))
              : null,
          );
        });
      return h("div", { class: "agency-recs" }, h("h4", {}, tAgency(a.agency)), h("ol", {}, ...rows));
    });
    const suggested = recs.agencies
      .filter((a) => this.mayAssign(a.agency))
      .flatMap((a) => a.suggested)
      .filter((u) => !assigned.has(u));
    return h(
      "div",
      { class: "recs", id: "recs" },
      h(
        "h3",
        {},
        t("recommendations"),
        this.me.can.assign && suggested.length
          ? h("button", { class: "small go", id: "assign-suggested", title: "a", onclick: () => void this.assign(suggested) }, `${t("assign_suggested")} (${suggested.length})`)
          : null,
      ),
      ...blocks,
    );
  }

  private assignedBlock(inc: Incident): HTMLElement | null {
    if (!inc.assignments.length) return null;
    const rows = inc.assignments.map((a) => {
      const r = this.state.routes.get(a.unit_id);
      const leg = r?.legs.find((l) => l.kind === (r.active_leg ?? "scene")) ?? r?.legs[0];
      const u = this.state.units.get(a.unit_id);
      const dots = (leg?.signals ?? []).map((s) =>
        h("span", { class: "sig", style: `background:${SIGNAL_COLOUR[s.status] ?? "#94a3b8"}`, title: `#${s.intersection_id} ${tStatus(s.status)}`, "data-status": s.status }),
      );
      return h(
        "li",
        { "data-unit": a.unit_id },
        h("span", { class: "name" }, `${a.unit_id} · ${tUnitType(a.unit_type)}`),
        h("span", { class: "state" }, tStatus(u?.status ?? a.status)),
        r?.greenwave_active ? h("span", { class: "chip go" }, t("greenwave")) : null,
        h("div", { class: "sigs" }, ...dots),
      );
    });
    return h("div", { class: "assigned", id: "assigned" }, h("h3", {}, t("assigned")), h("ul", {}, ...rows));
  }

  private timelineBlock(id: string): HTMLElement {
    const events = this.state.timelines.get(id) ?? [];
    const shown = events.filter((e) => !TIMELINE_HIDDEN.has(e.type));
    return h(
      "ol",
      { class: "timeline", id: "timeline", "data-count": events.length },
      ...shown
        .slice(-80)
        .reverse()
        .map((e) => h("li", { class: `ev ev-${e.type.replace(/\./g, "-")}`, "data-event": e.id }, h("time", {}, fmtTime(e.ts)), h("span", { class: "kind" }, tEvent(e.type)), h("span", { class: "text" }, describe(e)))),
    );
  }

  private renderUnits(): void {
    const counts = new Map<string, Map<string, number>>();
    for (const u of this.state.units.values()) {
      const m = counts.get(u.agency) ?? new Map<string, number>();
      m.set(u.status, (m.get(u.status) ?? 0) + 1);
      counts.set(u.agency, m);
    }
    const statuses = ["available", "dispatched", "en_route", "on_scene", "transporting", "at_hospital", "returning", "out_of_service"];
    const table = h(
      "table",
      { class: "unit-counts" },
      h("tr", {}, h("th", {}, ""), ...statuses.map((s) => h("th", {}, tStatus(s)))),
      ...[...counts.entries()].map(([agency, m]) => h("tr", {}, h("th", {}, tAgency(agency)), ...statuses.map((s) => h("td", {}, String(m.get(s) ?? ""))))),
    );
    const filter = h("input", { type: "search", id: "unit-filter", placeholder: "ID / callsign", value: this.unitFilter });
    filter.addEventListener("input", () => {
      this.unitFilter = filter.value;
      this.renderUnitList(list);
    });
    const list = h("ul", { class: "unit-list", id: "unit-list" });
    this.renderUnitList(list);
    this.els.unitsPanel.replaceChildren(table, filter, list);
  }

  private renderUnitList(list: HTMLElement): void {
    const q = this.unitFilter.trim().toLowerCase();
    const units = [...this.state.units.values()]
      .filter((u) => !q || u.id.toLowerCase().includes(q) || (u.callsign ?? "").toLowerCase().includes(q))
      .sort((a, b) => Number(a.status === "available") - Number(b.status === "available") || a.id.localeCompare(b.id))
      .slice(0, 200);
    list.replaceChildren(
      ...units.map((u) =>
        h(
          "li",
          { "data-unit": u.id, class: `unit st-${u.status}`, onclick: () => u.incident_id && this.select(u.incident_id, true) },
          h("span", { class: "dot", style: `background:var(--${u.agency})` }),
          h("span", { class: "name" }, `${u.callsign ?? u.id} · ${tUnitType(u.type)}`),
          h("span", { class: "state" }, tStatus(u.status)),
        ),
      ),
    );
  }
}

function ageText(iso: string): string {
  const s = ageS(iso);
  return s < 60 ? "<1′" : `${Math.floor(s / 60)}′`;
}

function describe(e: LiveEvent): string {
  const d = e.data ?? {};
  switch (e.type) {
    case "incident.created":
    case "incident.merged":
      return d.call ? `${d.call.centre} · ${tType(d.call.call_type)}${d.reason ? ` · ${d.reason}` : ""}` : "";
    case "whistle.sounded":
      return `${d.centre ?? ""} · ${e.actor}`;
    case "whistle.summons":
    case "whistle.ack":
    case "whistle.stand_down":
      return d.summons ? `${tAgency(d.summons.agency)} ${d.summons.coordinator} (${d.summons.tier === "primary" ? t("primary") : t("backup")})${d.after_s !== undefined ? ` +${fmtDuration(d.after_s)}` : ""}` : "";
    case "whistle.alert":
      return String(d.text ?? "");
    case "assignment.created":
      return `${d.unit_id} · ${tUnitType(d.unit_type)} · ${t("eta")} ${fmtDuration(d.eta_s)}${d.hospital ? ` · ${t("hospital")} ${d.hospital.name}` : ""}`;
    case "unit.status":
      return `${d.unit_id} · ${tStatus(d.status)}`;
    case "greenwave.enabled":
    case "greenwave.activated":
      return d.unit_id ? String(d.unit_id) : (d.units ?? []).join(", ");
    case "greenwave.cancel":
    case "greenwave.status":
      return `${d.unit_id ?? ""} #${d.intersection_id} ${tStatus(d.status)}`;
    case "incident.closed":
      return String(d.reason ?? "");
    case "route.planned":
      return `${d.unit_id} · ${d.leg} · ${fmtDuration(d.route?.duration_s)}`;
    default:
      return "";
  }
}

declare global {
  interface Window {
    yishao?: unknown;
  }
}

void boot("console", (api, me) => {
  const c = new Console(api, me);
  // Read-only handles for the browser tests and the benchmark.
  window.yishao = {
    console: c,
    unitPosition: (id: string) => c.unitsLayer.position(id),
    signalStatus: (unitId: string, node: number) =>
      c.state.routes.get(unitId)?.legs.flatMap((l) => l.signals).find((s) => s.intersection_id === node)?.status ?? null,
    lastId: () => c.live.lastId,
    link: () => c.live.state,
    stats: () => ({ events: c.eventsApplied, frames: c.positionFrames, units: c.state.units.size, draw: c.unitsLayer.stats }),
    reconnect: () => c.live.reconnect(),
  };
});
