// What "alive" means for the watchdog: each part that matters (the main loop, the meter worker, the
// relay supervision) beats, and a part whose last beat is older than its limit has stalled. The
// notifier asks check() before each WATCHDOG=1, so one wedged part stops the pings.
import type { Liveness } from './notify.js';

export interface Heartbeats {
  beat(part: string): void;
  check(): Liveness;
}

/**
 * limitsMs: the longest silence each part may keep, e.g. { main_loop: 2000, meter: 30_000 }.
 * A part counts from creation, so one that never beats stalls after its limit too.
 */
export function createHeartbeats(limitsMs: Record<string, number>, nowMs: () => number = () => performance.now()): Heartbeats {
  const created = nowMs();
  const lastBeat = new Map<string, number>(Object.keys(limitsMs).map((part) => [part, created]));
  return {
    beat(part) {
      if (!lastBeat.has(part)) throw new Error(`unknown liveness part "${part}" (known: ${[...lastBeat.keys()].join(', ')})`);
      lastBeat.set(part, nowMs());
    },
    check() {
      const now = nowMs();
      const stalled = Object.entries(limitsMs)
        .filter(([part, limitMs]) => now - lastBeat.get(part)! > limitMs)
        .map(([part]) => part);
      return stalled.length === 0 ? { ok: true } : { ok: false, stalled };
    },
  };
}

/** Beats `part` from a timer: it goes silent when the event loop is blocked or starved. */
export function beatFromEventLoop(heartbeats: Heartbeats, part: string, everyMs: number): () => void {
  heartbeats.beat(part);
  const timer = setInterval(() => heartbeats.beat(part), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
