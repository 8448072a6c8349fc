// The coordinator's page (`/coordinator`, phone first): it rings when the whistle summons this
// coordinator, shows what the summons is about and who else is summoned, counts down to the
// escalation and acks in one tap; after the ack it shows the incident's timeline and, for the
// 122 coordinator, the green-wave requests along each route. A lost connection is shown
// plainly; on reconnect every summons that arrived meanwhile is shown (and rings if unacked).

import "leaflet/dist/leaflet.css";
import "./style.css";
import "./coordinator.css";

import { ApiError, type Api } from "./api";
import { ageS, coalesce, fmtDuration, fmtTime, h, toast } from "./dom";
import { onLang, t, tAgency, tEvent, tStatus, tType } from "./i18n";
import { Live } from "./live";
import { BaseMap, IncidentLayer, L, SIGNAL_COLOUR } from "./map";
import { Ringer } from "./ring";
import { TIMELINE_HIDDEN } from "./timeline";
import { boot, linkBanner, topBar } from "./shell";
import { LiveState, noChanges } from "./state";
import type { DutyDay, Incident, LiveEvent, Me, RouteView, ServerMessage, Summons, Whistle } from "./types";

const OPEN_STATUSES = new Set(["pending", "escalated", "expired"]);

class CoordinatorPage {
  readonly state = new LiveState();
  readonly live: Live;
  readonly ringer = new Ringer();
  private base: BaseMap | null = null;
  private incidentLayer: IncidentLayer | null = null;
  private readonly main: HTMLElement;
  private readonly bar;
  private readonly banner;
  private duty: DutyDay[] = [];
  private routes = new Map<string, RouteView[]>();
  private missed = new Set<string>();
  private loadedTrail = new Set<string>();
  private focus: string | null = null;
  private readonly render = coalesce(() => this.paint());
  private acking = new Set<string>();

  constructor(
    readonly api: Api,
    readonly me: Me,
  ) {
    this.bar = topBar("coordinator", me);
    this.banner = linkBanner("lost_banner");
    this.main = h("main", { class: "coord", id: "coord" });
    document.body.replaceChildren(this.bar.el, this.banner.el, this.main, this.ringer.audio);
    this.live = new Live(api, {
      snapshot: (s) => {
        this.state.load(s);
        for (const inc of s.incidents) this.loadedTrail.delete(inc.id);
        this.afterChange(true);
      },
      event: (e) => this.onEvent(e),
      control: (m) => this.onControl(m),
      state: (s) => {
        this.bar.setLink(s, this.live.lastLiveAt);
        this.banner.set(s, this.live.lastLiveAt);
        this.render();
      },
      unauthorized: (reason) => toast(`${t("bad_token")}: ${reason}`, "error"),
    });
    this.live.start();
    void this.loadDuty();
    setInterval(() => this.tick(), 1000);
    setInterval(() => void this.refreshRoutes(), 5000);
    onLang(() => this.paint());
    document.addEventListener("visibilitychange", () => this.afterChange(false));
  }

  // -- data ------------------------------------------------------------------------------------
  private onEvent(e: LiveEvent): void {
    const ch = this.state.apply(e, noChanges());
    if (e.type === "whistle.summons" && e.data?.summons?.coordinator === this.me.sub) {
      // Replayed on reconnect (before `ready`): it arrived while this page was cut off.
      if (this.live.state !== "live") this.missed.add(e.data.summons.id);
      const inc = e.data.incident as Partial<Incident> | undefined;
      if (inc?.id && !this.state.incidents.has(inc.id)) {
        // The summons carries a summary; the full record follows.
        this.state.incidents.set(inc.id, { calls: [], assignments: [], whistle_id: e.data.whistle_id, status: "open", version: -1, ...inc } as Incident);
        void this.loadIncident(inc.id);
      }
    }
    for (const wid of ch.stale) void this.loadWhistle(wid);
    if (e.type.startsWith("greenwave.") || e.type === "route.planned" || e.type === "assignment.created") {
      if (e.incident_id) void this.loadRoutes(e.incident_id);
    }
    this.afterChange(false);
  }

  private onControl(m: ServerMessage): void {
    if (m.type === "ack.ok") {
      const mine: Summons[] = m.data.summons ?? [];
      for (const s of mine) {
        const w = this.state.whistles.get(m.data.whistle_id);
        if (w) {
          const i = w.summons.findIndex((x) => x.id === s.id);
          if (i >= 0) w.summons[i] = s;
        }
      }
      this.acking.delete(m.data.whistle_id);
      toast(t("ack_sent"));
      this.afterChange(false);
    } else if (m.type === "error") {
      toast(`${t("error")}: ${m.data.message}`, "error");
      this.acking.clear();
      this.render();
    }
  }

  private async loadWhistle(id: string): Promise<void> {
    try {
      const w = await this.api.get<Whistle>(`/api/whistles/${encodeURIComponent(id)}`);
      this.state.whistles.set(w.id, w);
      this.afterChange(false);
    } catch (err) {
      console.warn("whistle:", err);
    }
  }

  private async loadIncident(id: string): Promise<void> {
    try {
      const inc = await this.api.get<Incident>(`/api/incidents/${encodeURIComponent(id)}`);
      this.state.incidents.set(inc.id, inc);
      this.render();
    } catch (err) {
      console.warn("incident:", err);
    }
  }

  private async loadTrail(id: string): Promise<void> {
    if (this.loadedTrail.has(id)) return;
    this.loadedTrail.add(id);
    try {
      this.state.mergeTimeline(id, await this.api.get<LiveEvent[]>(`/api/incidents/${encodeURIComponent(id)}/events`));
      this.render();
    } catch (err) {
      this.loadedTrail.delete(id);
      console.warn("timeline:", err);
    }
  }

  private async loadRoutes(id: string): Promise<void> {
    if (this.me.agency !== "traffic") return;
    try {
      this.routes.set(id, await this.api.get<RouteView[]>(`/api/console/routes?incident=${encodeURIComponent(id)}`));
      this.render();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) console.warn("routes:", err);
    }
  }

  private async refreshRoutes(): Promise<void> {
    // Controllers' reports (served, rejected) reach screens without the incident's id, so the
    // 122 coordinator's list is re-read while a summons is open.
    if (this.me.agency !== "traffic" || this.live.state !== "live") return;
    for (const w of this.mine()) if (!w.whistle.closed_at) await this.loadRoutes(w.whistle.incident_id);
  }

  private async loadDuty(): Promise<void> {
    try {
      this.duty = await this.api.get<DutyDay[]>("/api/console/duty?days=2");
      this.render();
    } catch (err) {
      console.warn("duty:", err);
    }
  }

  // -- summons -------------------------------------------------------------------------------------
  /** Open whistles that summon me, newest first, with my summons in each. */
  mine(): { whistle: Whistle; summons: Summons }[] {
    const out: { whistle: Whistle; summons: Summons }[] = [];
    for (const w of this.state.whistles.values()) {
      const mineList = w.summons.filter((s) => s.coordinator === this.me.sub);
      if (!mineList.length) continue;
      // A backup summons comes after a primary one for the same person only in odd rosters:
      // the latest one is what this person owes.
      const s = mineList[mineList.length - 1];
      out.push({ whistle: w, summons: s });
    }
    return out.sort((a, b) => Date.parse(b.summons.summoned_at) - Date.parse(a.summons.summoned_at));
  }

  /** Summonses I still owe: open whistle, not acked by me, and nobody of my agency acked. */
  private unacked(): { whistle: Whistle; summons: Summons }[] {
    return this.mine().filter(({ whistle, summons }) => this.owed(whistle, summons));
  }

  private owed(whistle: Whistle, summons: Summons): boolean {
    if (whistle.closed_at || !OPEN_STATUSES.has(summons.status)) return false;
    return !whistle.summons.some((s) => s.agency === summons.agency && s.status === "acked");
  }

  private afterChange(_snapshot: boolean): void {
    const waiting = this.unacked();
    if (waiting.length) {
      const first = waiting[0];
      const inc = this.state.incidents.get(first.whistle.incident_id);
      this.ringer.start(t("summoned"), inc ? `${inc.call_types.map(tType).join(" / ")} · ${inc.address ?? ""}` : first.whistle.incident_id);
    } else if (this.ringer.ringing) {
      this.ringer.stop();
    }
    for (const { whistle, summons } of this.mine()) {
      if (summons.status === "acked") {
        void this.loadTrail(whistle.incident_id);
        if (!this.routes.has(whistle.incident_id)) void this.loadRoutes(whistle.incident_id);
      }
    }
    this.render();
  }

  async ack(whistleId: string): Promise<void> {
    if (this.acking.has(whistleId)) return;
    this.acking.add(whistleId);
    this.render();
    if (!this.live.send({ type: "ack", whistle_id: whistleId, ref: `ack-${whistleId}`.slice(0, 64) })) {
      // No socket right now: the REST ack does the same.
      try {
        const w = await this.api.post<Whistle>(`/api/whistles/${encodeURIComponent(whistleId)}/ack`);
        this.state.whistles.set(w.id, w);
        toast(t("ack_sent"));
      } catch (err) {
        toast(`${t("error")}: ${err instanceof ApiError ? err.detail : String(err)}`, "error");
      } finally {
        this.acking.delete(whistleId);
        this.afterChange(false);
      }
    }
  }

  // -- rendering -------------------------------------------------------------------------------------
  private tick(): void {
    for (const el of document.querySelectorAll<HTMLElement>("[data-deadline]")) {
      const left = (Date.parse(el.dataset.deadline!) - Date.now()) / 1000;
      el.textContent = left > 0 ? fmtDuration(left) : "0:00";
      el.classList.toggle("late", left <= 0);
    }
  }

  private paint(): void {
    const parts: HTMLElement[] = [];
    if (!this.ringer.armed) {
      parts.push(
        h(
          "button",
          {
            id: "start-shift",
            class: "primary huge",
            onclick: async () => {
              await this.ringer.arm();
              this.render();
            },
          },
          t("start_shift"),
        ),
      );
    }
    const all = this.mine();
    const open = all.filter(({ whistle }) => !whistle.closed_at);
    if (!open.length) {
      parts.push(h("div", { class: "watch card", id: "on-watch" }, h("div", { class: "big-icon" }), t("on_watch")));
    }
    for (const { whistle, summons } of open) parts.push(this.summonsCard(whistle, summons));
    parts.push(this.dutyCard());
    this.main.replaceChildren(...parts);
    this.tick();
    this.placeMap(open[0]?.whistle.incident_id ?? null);
  }

  private summonsCard(w: Whistle, mine: Summons): HTMLElement {
    const inc = this.state.incidents.get(w.incident_id);
    const waiting = this.owed(w, mine);
    const escalation = w.escalations.filter((e) => e.agency === mine.agency && e.kind === "backup_summoned").at(-1);
    const others = w.summons.map((s) =>
      h(
        "li",
        { class: `s-${s.status}`, "data-summons": s.id },
        h("span", {}, `${tAgency(s.agency)} · ${s.tier === "primary" ? t("primary") : t("backup")} · ${s.coordinator === this.me.sub ? t("you") : s.coordinator}`),
        h("b", { class: "state" }, tStatus(s.status)),
      ),
    );
    const card = h(
      "section",
      { class: `summons-card card${waiting ? " ringing" : ""}`, id: `summons-${w.id}`, "data-whistle": w.id, "data-status": mine.status },
      h("div", { class: "summons-title" }, waiting ? t("summoned") : mine.status === "acked" ? t("ack_sent") : t("stood_down")),
      mine.tier === "backup"
        ? h("p", { class: "escalated-note", id: "escalated-note" }, `${t("escalated_to_you")}${escalation ? ` · ${escalation.text}` : ""}`)
        : null,
      this.missed.has(mine.id) ? h("p", { class: "missed-note", id: "missed-note" }, t("missed_while_offline")) : null,
      h("h2", { id: "summons-type" }, inc ? inc.call_types.map(tType).join(" / ") : w.incident_id),
      h("div", { class: "sub" }, `${w.incident_id} · ${inc?.address ?? (inc ? `${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}` : "")}`),
      inc ? h("div", { class: "sub" }, `${t("called_by")}: `, ...inc.centres.map((c) => h("span", { class: `chip centre c${c}` }, c))) : null,
      waiting && mine.status === "pending"
        ? h("div", { class: "countdown-big" }, h("span", {}, t("countdown")), h("b", { "data-deadline": mine.deadline, id: "my-countdown" }, fmtDuration((Date.parse(mine.deadline) - Date.now()) / 1000)))
        : null,
      waiting && mine.status !== "pending" ? h("p", { class: "missed-note", id: "late-note" }, t("late_ack")) : null,
      waiting
        ? h(
            "button",
            { class: "ack-big", id: "ack-button", disabled: this.acking.has(w.id), onclick: () => void this.ack(w.id) },
            t("ack_big"),
          )
        : null,
      h("div", { class: "mini-map", id: "mini-map" }),
      h("h3", {}, t("who_summoned")),
      h("ul", { class: "others", id: "others" }, ...others),
      !waiting ? this.afterAck(w) : null,
    );
    return card;
  }

  private afterAck(w: Whistle): HTMLElement {
    const events = this.state.timelines.get(w.incident_id) ?? [];
    const routes = this.routes.get(w.incident_id) ?? [];
    return h(
      "div",
      { class: "after-ack" },
      this.me.agency === "traffic"
        ? h(
            "div",
            { class: "gw", id: "greenwave-list" },
            h("h3", {}, t("greenwave_requests")),
            routes.length ? null : h("p", { class: "hint" }, t("no_units_yet")),
            ...routes.map((r) => {
              const leg = r.legs.find((l) => l.kind === (r.active_leg ?? "scene")) ?? r.legs[0];
              return h(
                "div",
                { class: "gw-route", "data-unit": r.unit_id },
                h("b", {}, `${r.unit_id} `),
                r.greenwave_active ? h("span", { class: "chip go" }, t("greenwave_active")) : null,
                h(
                  "ol",
                  {},
                  ...(leg?.signals ?? []).map((s) =>
                    h("li", { "data-node": s.intersection_id, "data-status": s.status }, h("span", { class: "sig", style: `background:${SIGNAL_COLOUR[s.status] ?? "#94a3b8"}` }), ` #${s.intersection_id} `, h("b", {}, tStatus(s.status))),
                  ),
                ),
              );
            }),
          )
        : h("span"),
      h("h3", {}, t("timeline")),
      h(
        "ol",
        { class: "timeline", id: "timeline", "data-count": events.length },
        ...events
          .filter((e) => !TIMELINE_HIDDEN.has(e.type))
          .slice(-60)
          .reverse()
          .map((e) => h("li", { "data-event": e.id }, h("time", {}, fmtTime(e.ts)), h("span", { class: "kind" }, tEvent(e.type)), h("span", {}, e.data?.summons?.coordinator ?? e.data?.unit_id ?? ""))),
      ),
    );
  }

  private dutyCard(): HTMLElement {
    const rows = this.duty.map((d, i) => {
      const mine = d.duty.find((x) => x.agency === this.me.agency);
      return h(
        "tr",
        {},
        h("th", {}, i === 0 ? t("duty_today") : t("duty_tomorrow"), h("br"), h("small", {}, d.day.slice(5))),
        h(
          "td",
          {},
          h("div", { class: mine?.primary === this.me.sub ? "me" : "" }, h("small", {}, `${t("primary")} `), mine?.primary ?? t("no_duty")),
          h("div", { class: mine?.backup === this.me.sub ? "me" : "" }, h("small", {}, `${t("backup")} `), mine?.backup ?? "—"),
        ),
      );
    });
    return h("section", { class: "card duty", id: "duty" }, h("h3", {}, `${t("duty")} · ${tAgency(this.me.agency)}`), h("table", {}, ...rows));
  }

  private placeMap(incidentId: string | null): void {
    const el = document.getElementById("mini-map");
    if (!el || !incidentId) return;
    const inc = this.state.incidents.get(incidentId);
    if (!inc) return;
    // One Leaflet map, moved into the newest card at each paint (re-creating it would refetch).
    if (!this.base) {
      // Leaflet measures its container when it is made: it must be in the page by then.
      const holder = h("div", { class: "mini-map-inner" });
      el.append(holder);
      this.base = new BaseMap(holder, this.api, this.me, { compact: true });
      this.incidentLayer = new IncidentLayer(this.base);
    } else {
      el.append(this.base.map.getContainer());
      this.base.map.invalidateSize();
    }
    this.incidentLayer?.clear();
    this.incidentLayer?.set(inc);
    if (this.focus !== incidentId) {
      this.focus = incidentId;
      this.base.map.setView(L.latLng(inc.lat, inc.lon), 15);
    }
  }
}

void boot("coordinator", (api, me) => {
  const page = new CoordinatorPage(api, me);
  window.yishao = {
    coordinator: page,
    link: () => page.live.state,
    reconnect: () => page.live.reconnect(),
    ringing: () => page.ringer.ringing && !page.ringer.audio.paused,
    age: (iso: string) => ageS(iso),
  };
});
