// The alarm: an audio element playing a generated two-tone pager sound in a loop, started only
// after the first tap of the shift (browsers refuse sound before a gesture), plus vibration and
// a notification when the page is in the background.

/** A short two-tone pager burst as a WAV file (generated: no sound file to ship or fetch). */
function pagerWav(): Blob {
  const rate = 16_000;
  const seconds = 1.2;
  const n = Math.floor(rate * seconds);
  const data = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const beat = Math.floor(t / 0.15);
    const on = beat % 2 === 0 && t < 0.9;
    const f = beat % 4 === 0 ? 1400 : 1000;
    data[i] = on ? Math.round(Math.sin(2 * Math.PI * f * t) * 0.6 * 32767) : 0;
  }
  const header = new DataView(new ArrayBuffer(44));
  const put = (o: number, s: string) => [...s].forEach((c, i) => header.setUint8(o + i, c.charCodeAt(0)));
  put(0, "RIFF");
  header.setUint32(4, 36 + n * 2, true);
  put(8, "WAVE");
  put(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  put(36, "data");
  header.setUint32(40, n * 2, true);
  return new Blob([header, data], { type: "audio/wav" });
}

export class Ringer {
  readonly audio: HTMLAudioElement;
  armed = false;
  ringing = false;
  private vibrateTimer: number | null = null;
  private notification: Notification | null = null;

  constructor() {
    this.audio = document.createElement("audio");
    this.audio.id = "ring";
    this.audio.loop = true;
    this.audio.preload = "auto";
    this.audio.src = URL.createObjectURL(pagerWav());
    document.body.append(this.audio);
  }

  /** The first tap of the shift: unlock sound (play muted once) and ask for notifications. */
  async arm(): Promise<void> {
    this.audio.muted = true;
    try {
      await this.audio.play();
    } catch (err) {
      console.warn("audio:", err);
    }
    if (!this.ringing) this.audio.pause();
    this.audio.muted = false;
    this.armed = true;
    if ("Notification" in window && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        /* some browsers refuse outside a secure context */
      }
    }
    if (this.ringing) {
      void this.play();
      this.vibrate();
    }
  }

  private async play(): Promise<void> {
    if (!this.armed) return;
    try {
      await this.audio.play();
    } catch (err) {
      console.warn("audio:", err);
    }
  }

  /** Ring until stop(); `title`/`body` go to a notification when the page is hidden. */
  start(title: string, body: string): void {
    if (!this.ringing) {
      this.ringing = true;
      void this.play();
      this.vibrate();
    }
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      this.notification?.close();
      this.notification = new Notification(title, { body, tag: "yishao-summons", requireInteraction: true });
    }
  }

  private vibrate(): void {
    // Vibration, like sound, is refused before the first tap (and logged as an error).
    if (!this.armed || this.vibrateTimer !== null || !("vibrate" in navigator)) return;
    navigator.vibrate([600, 300, 600]);
    this.vibrateTimer = window.setInterval(() => navigator.vibrate([600, 300, 600]), 2500);
  }

  stop(): void {
    this.ringing = false;
    this.audio.pause();
    this.audio.currentTime = 0;
    if (this.vibrateTimer !== null) clearInterval(this.vibrateTimer);
    this.vibrateTimer = null;
    if (this.armed && "vibrate" in navigator) navigator.vibrate(0);
    this.notification?.close();
    this.notification = null;
  }
}
