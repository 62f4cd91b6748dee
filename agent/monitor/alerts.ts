// Webhook alerts for people: a JSON POST when the engine fails and when it recovers, so an operator
// can wire any chat or e-mail gateway. At most one failure alert per outage, none sooner than
// minIntervalMs after the previous one (a flapping engine must not flood a phone), and each alert is
// retried with backoff (full jitter, agent/retry/backoff.ts) so a gateway that is down for a moment
// still gets it.
import { EventEmitter } from 'node:events';
import type { Logger } from '../logging/logger.js';
import { Backoff } from '../retry/backoff.js';
import type { MonitorMessage } from './monitor-core.js';

export interface WebhookConfig {
  url: string;
  timeoutMs: number;
  /** Attempts after the first. */
  retries: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  minIntervalMs: number;
}

export type AlertKind = 'engine_failure' | 'engine_recovered';

/** The body of the POST: the monitor message, what it means in one sentence, and the alert kind. */
export interface AlertPayload extends MonitorMessage {
  alert: AlertKind;
  /** One line for a person; also what Slack- and Mattermost-style incoming webhooks display. */
  text: string;
  /** Outages since the previous failure alert that got none because of the rate limit. */
  suppressed_outages: number;
}

// ---------------------------------------------------------------- the policy (pure)

export interface AlertPolicyState {
  /** The current outage: alerted, suppressed by the rate limit, or none. */
  outage: 'none' | 'alerted' | 'suppressed';
  lastFailureAlertMs?: number;
  suppressedOutages: number;
}

export const initialAlertPolicy: AlertPolicyState = { outage: 'none', suppressedOutages: 0 };

/** Decides whether a monitor message becomes an alert. */
export function decideAlert(
  state: AlertPolicyState,
  message: MonitorMessage,
  nowMs: number,
  minIntervalMs: number,
): { state: AlertPolicyState; alert?: AlertPayload } {
  if (message.action === 'report_engine_failure') {
    if (state.outage !== 'none') return { state };
    const tooSoon = state.lastFailureAlertMs !== undefined && nowMs - state.lastFailureAlertMs < minIntervalMs;
    if (tooSoon) return { state: { ...state, outage: 'suppressed', suppressedOutages: state.suppressedOutages + 1 } };
    const alert = payload('engine_failure', message, state.suppressedOutages);
    return { state: { outage: 'alerted', lastFailureAlertMs: nowMs, suppressedOutages: 0 }, alert };
  }
  if (message.action === 'engine_recovered') {
    const next = { ...state, outage: 'none' as const };
    // A recovery is news only to someone who was told about the failure.
    return state.outage === 'alerted' ? { state: next, alert: payload('engine_recovered', message, 0) } : { state: next };
  }
  return { state };
}

function payload(alert: AlertKind, message: MonitorMessage, suppressedOutages: number): AlertPayload {
  return { ...message, alert, text: alertText(alert, message), suppressed_outages: suppressedOutages };
}

function alertText(alert: AlertKind, message: MonitorMessage): string {
  if (alert === 'engine_failure') {
    return `${message.cp_id}: engine failure (${message.failure_type}, ${message.consecutive_failures} consecutive failed checks by ${message.monitor_id}) since ${message.outage_started_at ?? message.time}`;
  }
  return `${message.cp_id}: engine recovered after ${Math.round((message.outage_ms ?? 0) / 1000)} s (${message.failure_type})`;
}

// ---------------------------------------------------------------- delivery

export interface AlerterDeps {
  log: Logger;
  now?: () => number;
  /** Numbers in [0, 1) for the retry jitter (Math.random by default). */
  random?: () => number;
}

/** At most this many alerts wait for delivery; older ones are dropped first. */
const MAX_PENDING = 20;

/**
 * Emits 'delivered' (AlertPayload), 'attempt_failed' ({ alert, attempt, error }), 'gave_up' (AlertPayload)
 * and 'suppressed' (MonitorMessage) so callers and tests can follow it.
 */
export class WebhookAlerter extends EventEmitter {
  private policy: AlertPolicyState = initialAlertPolicy;
  private readonly pending: AlertPayload[] = [];
  private worker: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly now: () => number;

  constructor(
    private readonly config: WebhookConfig,
    private readonly deps: AlerterDeps,
  ) {
    super();
    this.now = deps.now ?? Date.now;
  }

  /** Feeds a monitor message; only failures and recoveries can become alerts. */
  handle(message: MonitorMessage): void {
    if (this.stopping.signal.aborted) return;
    const before = this.policy;
    const { state, alert } = decideAlert(before, message, this.now(), this.config.minIntervalMs);
    this.policy = state;
    if (state.suppressedOutages > before.suppressedOutages) {
      this.deps.log.notice('alert_suppressed', { cp_id: message.cp_id, min_interval_ms: this.config.minIntervalMs, suppressed_outages: state.suppressedOutages });
      this.emit('suppressed', message);
    }
    if (!alert) return;
    if (this.pending.length >= MAX_PENDING) this.pending.shift();
    this.pending.push(alert);
    this.startWorker();
  }

  private startWorker(): void {
    this.worker ??= this.deliverAll().finally(() => {
      this.worker = undefined;
      // An alert handed over while the last one was settling must not wait for the next alert.
      if (this.pending.length > 0 && !this.stopping.signal.aborted) this.startWorker();
    });
  }

  /** Abandons retries and waits for the attempt in flight (bounded by its timeout). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.worker;
  }

  private async deliverAll(): Promise<void> {
    for (let alert = this.pending.shift(); alert && !this.stopping.signal.aborted; alert = this.pending.shift()) {
      await this.deliver(alert);
    }
  }

  private async deliver(alert: AlertPayload): Promise<void> {
    const attempts = 1 + this.config.retries;
    const backoff = new Backoff({ initialMs: this.config.backoffInitialMs, maxMs: this.config.backoffMaxMs, random: this.deps.random });
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      const error = await this.post(alert);
      if (error === undefined) {
        this.deps.log.notice('alert_sent', { alert: alert.alert, cp_id: alert.cp_id, attempt, webhook: redactUrl(this.config.url) });
        this.emit('delivered', alert);
        return;
      }
      this.emit('attempt_failed', { alert, attempt, error });
      if (attempt === attempts || !error.retry || this.stopping.signal.aborted) {
        this.deps.log.err('alert_failed', { alert: alert.alert, cp_id: alert.cp_id, attempts: attempt, error: error.message, webhook: redactUrl(this.config.url) });
        this.emit('gave_up', alert);
        return;
      }
      await this.sleep(backoff.nextDelayMs());
    }
  }

  /** One POST; undefined when the gateway took it, else why not and whether trying again can help. */
  private async post(alert: AlertPayload): Promise<{ message: string; retry: boolean } | undefined> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.config.timeoutMs), this.stopping.signal]);
    try {
      const response = await fetch(this.config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'charger-agent-monitor' },
        body: JSON.stringify(alert),
        signal,
        redirect: 'error',
      });
      await response.body?.cancel();
      if (response.ok) return undefined;
      // 4xx means the gateway will never take this body; 408 and 429 mean "later".
      const retry = response.status >= 500 || response.status === 408 || response.status === 429;
      return { message: `WEBHOOK_HTTP_${response.status}: the webhook answered ${response.status} ${response.statusText}`, retry };
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError') return { message: `WEBHOOK_TIMEOUT: no answer within ${this.config.timeoutMs} ms`, retry: true };
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return { message: `WEBHOOK_UNREACHABLE: ${cause?.code ?? cause?.message ?? (error as Error).message}`, retry: true };
    }
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.stopping.signal;
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

/** Webhook URLs often carry a token in the path or query: log only where they point. */
export function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '[invalid url]';
  }
}
