// kafkajs 2.2.4 (the last release) re-arms a 1 ms timer for as long as a broker connection is open,
// even with nothing to send: RequestQueue.scheduleCheckPendingRequests computes a negative delay when
// nothing is throttled and schedules anyway (tulios/kafkajs#1556, #1704; the fix, PR #1667, was never
// released). On a Pi that is most of the agent's CPU while charging, and on Node 24 every negative
// delay also prints a TimeoutNegativeWarning (#1751). The replacement schedules a check only while
// requests are pending, with the original delays (throttle end, else 10 ms) so a marginal throttle
// still gets its check (PR #1532). kafkajs is pinned to 2.2.4 in package.json for this reason.
import { createRequire } from 'node:module';

const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
}

export function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.pending.length === 0 || this.throttleCheckTimeoutId) return;
  const throttledForMs = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, throttledForMs > 0 ? throttledForMs : CHECK_PENDING_REQUESTS_INTERVAL_MS);
}

let applied: boolean | undefined;

/** Replaces the method once; returns false (and changes nothing) if kafkajs's internals are not the expected ones. */
export function applyKafkajsIdlePatch(): boolean {
  if (applied !== undefined) return applied;
  const require = createRequire(import.meta.url);
  const { version } = require('kafkajs/package.json') as { version: string };
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: Partial<RequestQueueLike> & { scheduleCheckPendingRequests?: unknown } };
  applied = version === '2.2.4' && typeof RequestQueue.prototype.scheduleCheckPendingRequests === 'function';
  if (applied) RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  return applied;
}
