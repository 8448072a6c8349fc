// Pivot posts (支点) standing now, from GET /api/pivots/now: a marker at each post and a disc of
// its coverage. The plan measures coverage in road time (cover_s); the disc is the distance a
// car covers in that time at a typical urban emergency speed, a sketch for the screen, not the
// planner's cover set. Shown only to tokens that may read the plan; refreshed every minute and
// when a plan or posting event arrives.

import L from "leaflet";

import type { Api } from "./api";
import { t, tType } from "./i18n";
import type { BaseMap } from "./map";
import type { PivotsNow } from "./types";

// 40 km/h: the planner's emergency profile on central streets, about.
const SKETCH_SPEED_MPS = 11.1;
const REFRESH_MS = 60_000;
const POST_COLOUR = "#fbbf24";

export class PivotLayer {
  private group: L.LayerGroup;
  private timer: number | null = null;

  constructor(
    private readonly base: BaseMap,
    private readonly api: Api,
  ) {
    this.group = L.layerGroup().addTo(base.map);
  }

  start(): void {
    void this.load();
    this.timer = window.setInterval(() => void this.load(), REFRESH_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async load(): Promise<void> {
    let now: PivotsNow;
    try {
      now = await this.api.get<PivotsNow>("/api/pivots/now");
    } catch (err) {
      console.warn("pivots:", err);
      return;
    }
    this.draw(now);
  }

  private draw(now: PivotsNow): void {
    this.group.clearLayers();
    const radius = (now.cover_s ?? 60) * SKETCH_SPEED_MPS;
    const label = now.label ? ` · ${now.label}` : "";
    for (const p of now.posts) {
      L.circle([p.lat, p.lon], {
        renderer: this.base.placeRenderer,
        radius,
        color: POST_COLOUR,
        weight: 1,
        opacity: 0.7,
        fillColor: POST_COLOUR,
        fillOpacity: 0.12,
        interactive: false,
      }).addTo(this.group);
      const types = p.call_types
        .slice(0, 3)
        .map((c) => tType(c.call_type))
        .join(", ");
      const units = p.units.length ? ` · ${t("pivot_units")}: ${p.units.join(", ")}` : "";
      L.circleMarker([p.lat, p.lon], {
        renderer: this.base.placeRenderer,
        radius: 6,
        color: "#0b1220",
        weight: 2,
        fillColor: POST_COLOUR,
        fillOpacity: 1,
      })
        .bindTooltip(
          `${t("pivot_post")} #${p.rank} · ${p.hours} · ${t("pivot_calls")} ${p.expected_calls.toFixed(1)}` +
            ` · ${types} · ${t("pivot_cover")} ${Math.round(now.cover_s ?? 60)} s${units}${label}`,
        )
        .addTo(this.group);
    }
    this.base.map.getContainer().dataset.pivots = String(now.posts.length);
  }
}
