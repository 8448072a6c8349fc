// The shapes the service sends (README: REST, websocket envelope, snapshot). Only the fields the
// pages read are listed; the service sends more.

export type Role =
  | "dispatcher"
  | "coordinator"
  | "terminal"
  | "signal"
  | "property"
  | "observer"
  | "admin";
export type Agency = "police" | "traffic" | "ems" | "fire" | "property";

export interface Capabilities {
  see_all: boolean;
  read_incidents: boolean;
  post_calls: boolean;
  assign: boolean;
  whistle: boolean;
  greenwave: boolean;
  close: boolean;
  split: boolean;
  ack: boolean;
  drive: boolean;
  compounds: string[];
  edit_hospitals: boolean;
  edit_roster: boolean;
  /** Every action of the authorization model -> whether this token may ask for it. */
  actions?: Record<string, boolean>;
}

export interface Me {
  sub: string;
  role: Role;
  agency: Agency;
  centre: string | null;
  scope: string[];
  expires_at: number;
  page: string;
  can: Capabilities;
  map: {
    tile_url: string | null;
    tile_attribution: string | null;
    graph: string | null;
    bounds: [number, number, number, number] | null;
  };
  whistle_ack_timeout_s: number;
}

export interface Position {
  lat: number;
  lon: number;
  at: string;
  speed_kph?: number | null;
  heading_deg?: number | null;
}

export interface Unit {
  id: string;
  agency: Agency;
  type: string;
  callsign: string | null;
  station: string | null;
  station_lat: number | null;
  station_lon: number | null;
  status: string;
  position: Position | null;
  incident_id: string | null;
  version: number;
}

export interface CallRecord {
  call_id: string;
  centre: string;
  call_type: string;
  lat: number;
  lon: number;
  received_at: string;
  address: string | null;
  description: string | null;
  severity: number | null;
}

export interface Assignment {
  unit_id: string;
  agency: Agency;
  unit_type: string;
  assigned_at: string;
  eta_s: number | null;
  hospital_id: string | null;
  status: string;
}

export interface Incident {
  id: string;
  version: number;
  status: string;
  calls: CallRecord[];
  call_types: string[];
  lat: number;
  lon: number;
  address: string | null;
  severity: number | null;
  centres: string[];
  agencies: Agency[];
  whistle_eligible: boolean;
  priority: number;
  created_at: string;
  updated_at: string;
  assignments: Assignment[];
  whistle_id: string | null;
  compound_id?: string | null;
}

export interface Summons {
  id: string;
  agency: Agency;
  coordinator: string;
  tier: "primary" | "backup";
  backup: string | null;
  summoned_at: string;
  deadline: string;
  acked_at: string | null;
  status: "pending" | "acked" | "escalated" | "expired" | "stood_down";
}

export interface Escalation {
  at: string;
  agency: Agency;
  kind: string;
  summons_id: string | null;
  text: string;
}

export interface Whistle {
  id: string;
  incident_id: string;
  sounded_by: string;
  sounding_centre: string;
  sounded_at: string;
  ack_timeout_s: number;
  summons: Summons[];
  escalations: Escalation[];
  greenwave_enabled_at: string | null;
  closed_at: string | null;
}

export interface Snapshot {
  event_id: string;
  taken_at: string;
  incidents: Incident[];
  units: Unit[];
  whistles: Whistle[];
}

/** One server message: `{type, id, ts, data}`; events also carry incident_id and actor. */
export interface ServerMessage {
  type: string;
  id: string | null;
  ts: string;
  incident_id?: string | null;
  actor?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
}

export interface LiveEvent {
  id: string;
  type: string;
  ts: string;
  incident_id: string | null;
  actor: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
}

export interface SignalView {
  intersection_id: number;
  lat: number;
  lon: number;
  route_eta_s: number;
  status: string;
}

export interface LegView {
  kind: string;
  coordinates: [number, number][];
  duration_s: number;
  distance_m: number;
  signals: SignalView[];
}

export interface Hospital {
  id: string;
  name: string;
  lat: number;
  lon: number;
  accepting: boolean;
}

export interface RouteView {
  incident_id: string;
  unit_id: string;
  agency: Agency;
  unit_type: string;
  assigned_at: string;
  active_leg: string | null;
  greenwave_active: boolean;
  hospital: Hospital | null;
  legs: LegView[];
}

export interface Candidate {
  unit_id: string;
  unit_type: string;
  agency: Agency;
  eta_s: number | null;
  distance_m: number | null;
  reachable: boolean;
  stale: boolean;
  from_station: boolean;
  substitute_for: string | null;
  reason: string;
}

export interface AgencyRecommendation {
  agency: Agency;
  needs: { agency: Agency; unit_type: string; count: number }[];
  candidates: Candidate[];
  suggested: string[];
  missing: { agency: Agency; unit_type: string; count: number }[];
}

export interface Recommendations {
  incident_id: string;
  computed_at: string;
  agencies: AgencyRecommendation[];
}

export interface TodayFigures {
  day: string;
  incidents: number;
  open_incidents: number;
  whistles: number;
  assignments: number;
  arrivals: number;
  mean_arrival_s: number | null;
  signals_granted: number;
  signals_served: number;
  saved_s_estimate: number;
}

export interface Duty {
  agency: Agency;
  primary: string;
  backup: string | null;
  source: string;
}

export interface DutyDay {
  day: string;
  duty: Duty[];
  missing: Agency[];
}

export interface Station {
  name: string;
  agency: Agency;
  lat: number;
  lon: number;
  units: string[];
}

export interface Places {
  hospitals: Hospital[];
  stations: Station[];
}

/** A pivot post standing now (GET /api/pivots/now). */
export interface PivotPost {
  id: string;
  hours: string;
  lat: number;
  lon: number;
  rank: number;
  expected_calls: number;
  call_types: { call_type: string; share: number }[];
  units: string[];
}

export interface PivotsNow {
  at: string;
  month: string | null;
  day_kind: string | null;
  hours: string | null;
  cover_s: number | null;
  label: string | null;
  posts: PivotPost[];
}
