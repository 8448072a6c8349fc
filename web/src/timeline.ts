// Which events a timeline shows. Per-signal messages and plans would bury what a dispatcher or a
// coordinator reads the timeline for; the map and the units' signal dots show them.
export const TIMELINE_HIDDEN = new Set([
  "greenwave.request",
  "greenwave.update",
  "greenwave.cancel",
  "greenwave.status",
  "greenwave.planned",
  "route.planned",
  "incident.recommended",
]);
