// The live link: snapshot, then `/ws` from the snapshot's event id, resumed with `last_id` after
// every drop, so a page sees every event once, in order, through restarts of the service.
//
// Protocol (README "Websocket"): the first message is {"type":"auth","token","last_id"}; the
// server replays what was missed and says `ready`; `resync` (or close 4408) means the log no
// longer holds our position: reload the snapshot and start again from its event id.

import { Api, ApiError } from "./api";
import type { LiveEvent, ServerMessage, Snapshot } from "./types";

export type LinkState = "connecting" | "live" | "offline" | "resyncing";

export interface LiveHandlers {
  /** Replace the page's state (first load and after a resync). */
  snapshot(s: Snapshot): void;
  /** One event of the log, never twice, in log order. */
  event(e: LiveEvent): void;
  /** Frames that are not events: positions, ack.ok, error, status.ok, ... */
  control?(m: ServerMessage): void;
  state(s: LinkState, detail: string): void;
  /** The token was refused (close 4401 or REST 401): sign in again. */
  unauthorized(reason: string): void;
}

export function streamKey(id: string): [number, number] {
  const [ms, seq] = id.split("-");
  return [Number(ms), Number(seq ?? 0)];
}

export function after(a: string, b: string | null): boolean {
  if (b === null) return true;
  const [am, as] = streamKey(a);
  const [bm, bs] = streamKey(b);
  return am > bm || (am === bm && as > bs);
}

const SILENCE_MS = 40_000; // heartbeats come every 15 s: two missed means the link is dead

export class Live {
  lastId: string | null = null;
  state: LinkState = "connecting";
  lastLiveAt: number | null = null;
  private ws: WebSocket | null = null;
  private retry = 0;
  private stopped = false;
  private timer: number | null = null;
  private lastMessageAt = 0;
  private watchdog: number | null = null;

  constructor(
    private readonly api: Api,
    private readonly handlers: LiveHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    void this.load();
    this.watchdog = window.setInterval(() => this.checkSilence(), 5_000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.ws?.close(1000, "page closed");
    this.ws = null;
  }

  /** Send a client message; false when not connected (the caller says so on screen). */
  send(message: object): boolean {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN || this.state !== "live") {
      return false;
    }
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Drop the connection and resume (as after a network blip); for tests and the UI. */
  reconnect(): void {
    this.ws?.close(4000, "reconnect");
  }

  private setState(s: LinkState, detail = ""): void {
    this.state = s;
    if (s === "live") this.lastLiveAt = Date.now();
    this.handlers.state(s, detail);
  }

  private async load(): Promise<void> {
    this.setState(this.lastId === null ? "connecting" : "resyncing");
    try {
      const snap = await this.api.get<Snapshot>("/api/snapshot");
      this.lastId = snap.event_id;
      this.handlers.snapshot(snap);
      this.connect();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.handlers.unauthorized(err.detail);
        return;
      }
      this.setState("offline", String(err));
      this.later(() => void this.load());
    }
  }

  private later(fn: () => void): void {
    if (this.stopped) return;
    // Quick first retries (a restart takes seconds), then every 5 s at most.
    const delay = Math.min(5_000, 300 * 2 ** this.retry) + Math.random() * 200;
    this.retry = Math.min(this.retry + 1, 6);
    this.timer = window.setTimeout(fn, delay);
  }

  private connect(): void {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    this.ws = ws;
    let resync = false;
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      ws.send(JSON.stringify({ type: "auth", token: this.api.token, last_id: this.lastId }));
    };
    ws.onmessage = (ev: MessageEvent<string>) => {
      this.lastMessageAt = Date.now();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(ev.data) as ServerMessage;
      } catch {
        return;
      }
      if (msg.type === "resync") {
        resync = true;
        ws.close(4000, "resync");
        return;
      }
      if (msg.type === "ready") {
        this.retry = 0;
        if (msg.id) this.lastId = msg.id;
        this.setState("live", msg.data?.replayed ? `replayed ${msg.data.replayed}` : "");
        return;
      }
      if (msg.type === "heartbeat") {
        if (msg.id && after(msg.id, this.lastId)) this.lastId = msg.id;
        return;
      }
      if ("actor" in msg && msg.id) {
        if (!after(msg.id, this.lastId)) return; // already applied (snapshot or replay)
        this.lastId = msg.id;
        this.handlers.event({
          id: msg.id,
          type: msg.type,
          ts: msg.ts,
          incident_id: msg.incident_id ?? null,
          actor: msg.actor ?? "",
          data: msg.data ?? {},
        });
        return;
      }
      this.handlers.control?.(msg);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4401) {
        this.handlers.unauthorized(ev.reason || "token refused");
        return;
      }
      if (resync || ev.code === 4408) {
        this.lastId = null;
        this.setState("resyncing", ev.reason);
        void this.load();
        return;
      }
      this.setState("offline", ev.reason || `closed (${ev.code})`);
      this.later(() => this.connect());
    };
  }

  private checkSilence(): void {
    if (this.ws !== null && this.state === "live" && Date.now() - this.lastMessageAt > SILENCE_MS) {
      this.ws.close(4000, "silent");
    }
  }
}
