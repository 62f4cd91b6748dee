// Over 400 lines (about 440): the link's policy is one state machine (open, poll, back off, watchdogs,
// breaker, QoS) whose timers interlock; it reads best in one place.
//
// The meter link keeps the meter read whatever the line does: it starts even when the port cannot
// open, polls, backs off with full jitter while failing (agent/retry/backoff.ts), reopens the port when watchdogs fire (no good
// reading for too long, too many protocol errors in a row, preventive age), and a circuit breaker
// caps the reopenings an hour. Each change is logged once (OutageLog), never each failure. Only
// new, plausible readings go out: an old reading is never passed on as a fresh one.
import type { MeterQos, QosClass } from '../snapshot.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { LogFields, Logger } from '../logging/logger.js';
import { OutageLog } from '../logging/outage-log.js';
import { Backoff } from '../retry/backoff.js';
import { DriverError, type EnergyMeter, type MeterReading } from '../../drivers/types.js';
import { systemClock, type Clock, type TimerHandle } from '../../drivers/meter/clock.js';
import { energyWentBackwards } from '../../drivers/meter/plausibility.js';

export interface MeterLinkSettings {
  pollIntervalMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  breakerMaxReopensPerHour: number;
  breakerPauseMs: number;
  /** No good reading for this long while idle reopens the port. */
  staleIdleMs: number;
  /** No good reading for this long while charging reopens the port (charging.meterStaleMs). */
  meterStaleMs: number;
  /** Protocol errors in a row that reopen the port. */
  maxConsecutiveErrors: number;
  /** Preventive reopen of a port this old. */
  reopenAfterMs: number;
  /** The success rate is over the requests of this last stretch of time (at least the latest request). */
  qosWindowMs: number;
  /** A read still unsettled after this long counts as hung and reopens the port. Default 15 s. */
  readDeadlineMs?: number;
  /** Failed reads in a row before the meter is logged down (a failed open logs at once). Default 3. */
  downAfterFailures?: number;
  /** How often meter_still_down repeats during an outage. Default 60 s. */
  summaryEveryMs?: number;
}

export interface MeterLinkOptions {
  /** A new meter, port closed, for each (re)opening. */
  createMeter: () => EnergyMeter;
  settings: MeterLinkSettings;
  log: Logger;
  /** Each new, plausible reading, once. */
  onReading: (reading: MeterReading) => void;
  /** Called when the QoS class changes. */
  onQosChange?: (qos: MeterQos) => void;
  clock?: Clock;
  /** Numbers in [0, 1) for the backoff jitter (Math.random by default). */
  random?: () => number;
  /** Fields on every log line of this link, e.g. { path: '/dev/ttyUSB0', unit: 1 }. */
  logFields?: LogFields;
}

export type ReopenReason = 'stale' | 'protocol_errors' | 'port_lost' | 'hung' | 'preventive';

const HOUR_MS = 3_600_000;
const PROTOCOL_KINDS_EXCLUDED = new Set(['io', 'open']);

const QOS_ORDER: readonly QosClass[] = ['down', 'critical', 'degraded', 'healthy'];

/** The QoS class of a success rate: healthy ≥ 90 %, degraded 50–89 %, critical above 0, down at 0. */
export function qosClassOf(successRate: number): QosClass {
  if (successRate >= 0.9) return 'healthy';
  if (successRate >= 0.5) return 'degraded';
  if (successRate > 0) return 'critical';
  return 'down';
}

/**
 * The QoS class of the link: the class of its success rate, but never healthy while the meter is
 * stale (no good reading for meterStaleMs, or a meter_stale fault holds the charge point): a few
 * failed requests spread out by the backoff must not hide a meter that stopped answering.
 */
export function linkQosClass(successRate: number, stale: boolean): QosClass {
  const byRate = qosClassOf(successRate);
  return stale && byRate === 'healthy' ? 'degraded' : byRate;
}

interface Outcome {
  atMs: number;
  good: boolean;
}

function kindOf(error: unknown): string {
  return error instanceof DriverError && typeof error.fields.kind === 'string' ? error.fields.kind : 'io';
}

function describe(error: unknown): LogFields {
  return error instanceof DriverError ? { code: error.code, error: error.message } : { code: 'METER_ERROR', error: String(error) };
}

export class MeterLink {
  private readonly clock: Clock;
  private readonly outage: OutageLog;
  private readonly log: Logger;
  private meter: EnergyMeter | undefined;
  private openedAtMs = 0;
  private running = false;
  private timer: TimerHandle | undefined;
  private timerDueMs = 0;
  /** Fires meterStaleMs after the latest good reading, so the QoS class drops then, not at the next request. */
  private staleTimer: TimerHandle | undefined;
  private step: Promise<void> | undefined;
  private charging = false;
  private recovering = false;
  private openAttempts = 0;
  private nextOpenPlanned = false;
  private reopenTimesMs: number[] = [];
  private breakerUntilMs = 0;
  private probeAfterPause = false;
  private failuresInRow = 0;
  private protocolErrorsInRow = 0;
  private lastGoodMs: number | undefined;
  private startedMs = 0;
  private lastEmitted: MeterReading | undefined;
  private outcomes: Outcome[] = [];
  private readonly backoff: Backoff;
  private totals = { reads: 0, errors: 0, errorsByKind: {} as Record<string, number> };
  private qosClass: QosClass = 'healthy';
  private aliveMs = 0;

  constructor(private readonly options: MeterLinkOptions) {
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff({ initialMs: options.settings.backoffInitialMs, maxMs: options.settings.backoffMaxMs, random: options.random });
    this.log = options.logFields ? options.log.child(options.logFields) : options.log;
    this.outage = new OutageLog(this.log, {
      events: { down: LOG_EVENTS.meterDown, still: LOG_EVENTS.meterStillDown, up: LOG_EVENTS.meterUp },
      summaryEveryMs: options.settings.summaryEveryMs,
    });
  }

  /**
   * When the loop was last seen working (epoch ms), for the systemd watchdog: now while it waits
   * for its next turn, the start of the current turn while one runs (bounded by readDeadlineMs).
   * It stops moving only when the loop is wedged or dead.
   */
  get lastAliveMs(): number {
    return this.running && this.timer !== undefined ? this.clock.now() : this.aliveMs;
  }

  /** Makes the first attempt (open, then read) and keeps going; never rejects for the meter's sake. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.aliveMs = this.clock.now();
    this.startedMs = this.aliveMs;
    this.armStaleCheck();
    await this.runStep();
  }

  /** Closes the port first, so that a read under way ends now rather than at its deadline. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.staleTimer !== undefined) this.clock.clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    await this.closeMeter();
    await this.step;
    await this.closeMeter();
  }

  /** While charging, a meter without a good reading for meterStaleMs is reopened, and retries stay close. */
  setCharging(charging: boolean): void {
    this.charging = charging;
    const soonestMs = this.clock.now() + this.backoffCapMs();
    this.noteQosClass();
    if (charging && this.running && this.timer !== undefined && this.timerDueMs > soonestMs) this.schedule(0);
  }

  qos(): MeterQos {
    const nowMs = this.clock.now();
    const successRate = this.successRate(nowMs);
    return {
      successRate,
      qosClass: linkQosClass(successRate, this.isStale(nowMs)),
      reads: this.totals.reads,
      errors: this.totals.errors,
      errorsByKind: { ...this.totals.errorsByKind },
      connected: this.meter !== undefined,
      lastGoodReadingMs: this.lastEmitted?.takenAtMs,
    };
  }

  /**
   * While a meter fault holds the charge point (no good reading during a charge), its clearing waits
   * on the next good reading: retry at the poll interval, not the idle back-off. The port is not
   * reopened more often for it, so a long outage does not trip the circuit breaker by itself.
   */
  setRecovering(recovering: boolean): void {
    this.recovering = recovering;
    this.noteQosClass();
    const soonestMs = this.clock.now() + this.backoffCapMs();
    if (recovering && this.running && this.timer !== undefined && this.timerDueMs > soonestMs) this.schedule(0);
  }

  /** Good requests among those of the last qosWindowMs (at least the latest one); 1 before the first. */
  private successRate(nowMs: number): number {
    this.forgetOutcomesBefore(nowMs - this.options.settings.qosWindowMs);
    if (this.outcomes.length === 0) return 1;
    return this.outcomes.filter((outcome) => outcome.good).length / this.outcomes.length;
  }

  private forgetOutcomesBefore(sinceMs: number): void {
    const keepFrom = this.outcomes.findIndex((outcome) => outcome.atMs > sinceMs);
    this.outcomes.splice(0, keepFrom === -1 ? this.outcomes.length - 1 : Math.min(keepFrom, this.outcomes.length - 1));
  }

  /** No good reading for meterStaleMs (counted from the start before the first), or a meter fault pending. */
  private isStale(nowMs: number): boolean {
    return this.recovering || (this.running && nowMs - (this.lastGoodMs ?? this.startedMs) >= this.options.settings.meterStaleMs);
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerDueMs = this.clock.now() + delayMs;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runStep();
    }, delayMs);
  }

  private async runStep(): Promise<void> {
    if (this.step) return this.step;
    this.step = (async () => {
      this.aliveMs = this.clock.now();
      let delayMs: number;
      try {
        delayMs = this.meter ? await this.poll() : await this.connect();
      } catch (error) {
        this.log.err(LOG_EVENTS.unhandledError, { where: 'meter link', error });
        delayMs = this.backoffMs();
      }
      this.aliveMs = this.clock.now();
      this.noteQosClass();
      this.schedule(delayMs);
    })().finally(() => {
      this.step = undefined;
    });
    return this.step;
  }

  private async connect(): Promise<number> {
    const waitMs = this.breakerWaitMs();
    if (waitMs > 0) return waitMs;
    this.openAttempts += 1;
    let meter: EnergyMeter | undefined;
    try {
      meter = this.options.createMeter();
      await meter.open();
    } catch (error) {
      await meter?.close().catch(() => undefined);
      this.recordFailure('open', error, true);
      return this.backoffMs();
    }
    if (!this.running) {
      await meter.close().catch(() => undefined);
      return 0;
    }
    this.meter = meter;
    this.openedAtMs = this.clock.now();
    return this.poll();
  }

  /** 0 when an opening may go ahead now; else how long the breaker keeps it back. */
  private breakerWaitMs(): number {
    const nowMs = this.clock.now();
    if (nowMs < this.breakerUntilMs) return this.breakerUntilMs - nowMs;
    const isReopen = this.openAttempts > 0 && !this.nextOpenPlanned;
    this.nextOpenPlanned = false;
    if (!isReopen) return 0;
    this.reopenTimesMs = this.reopenTimesMs.filter((atMs) => nowMs - atMs < HOUR_MS);
    const { breakerMaxReopensPerHour, breakerPauseMs } = this.options.settings;
    if (this.reopenTimesMs.length >= breakerMaxReopensPerHour && !this.probeAfterPause) {
      this.breakerUntilMs = nowMs + breakerPauseMs;
      this.probeAfterPause = true;
      this.log.warning(LOG_EVENTS.meterBreakerOpen, { reopens_last_hour: this.reopenTimesMs.length, pause_ms: breakerPauseMs });
      return breakerPauseMs;
    }
    this.probeAfterPause = false;
    this.reopenTimesMs.push(nowMs);
    return 0;
  }

  private async poll(): Promise<number> {
    const meter = this.meter!;
    const startedMs = this.clock.now();
    try {
      const reading = await this.readWithDeadline(meter);
      this.accept(reading);
      return Math.max(0, this.options.settings.pollIntervalMs - (this.clock.now() - startedMs));
    } catch (error) {
      if (!this.running) return 0;
      const kind = kindOf(error);
      this.recordFailure(kind, error, false);
      const reason = this.reopenReasonAfter(kind);
      if (reason) await this.reopen(reason, error);
      return this.backoffMs();
    } finally {
      await this.watchdogs();
    }
  }

  private readWithDeadline(meter: EnergyMeter): Promise<MeterReading> {
    const deadlineMs = this.options.settings.readDeadlineMs ?? 15_000;
    return new Promise<MeterReading>((resolve, reject) => {
      const timer = this.clock.setTimeout(
        () => reject(new DriverError('METER_HUNG', `a read did not finish within ${deadlineMs} ms`, { kind: 'hung' })),
        deadlineMs,
      );
      meter.read().then(
        (reading) => {
          this.clock.clearTimeout(timer);
          resolve(reading);
        },
        (error: unknown) => {
          this.clock.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** Emits the reading when it is newer than the last one and its billing register did not run back. */
  private accept(reading: MeterReading): void {
    const last = this.lastEmitted;
    if (last && reading.takenAtMs <= last.takenAtMs) {
      throw new DriverError('METER_OLD_READING', `the meter gave a reading taken at ${reading.takenAtMs}, not after the last one (${last.takenAtMs})`, { kind: 'old_reading' });
    }
    const backwards = last && energyWentBackwards(reading, last);
    if (backwards) throw new DriverError('METER_IMPLAUSIBLE', `${backwards}; reading refused`, { kind: 'implausible' });
    const nowMs = this.clock.now();
    this.lastEmitted = reading;
    this.lastGoodMs = nowMs;
    this.failuresInRow = 0;
    this.protocolErrorsInRow = 0;
    this.backoff.reset();
    this.armStaleCheck();
    this.totals.reads += 1;
    this.pushOutcome(true);
    this.outage.success(nowMs);
    try {
      this.options.onReading(reading);
    } catch (error) {
      this.log.err(LOG_EVENTS.unhandledError, { where: 'meter onReading', error });
    }
  }

  private recordFailure(kind: string, error: unknown, isOpen: boolean): void {
    this.failuresInRow += 1;
    if (!PROTOCOL_KINDS_EXCLUDED.has(kind) && !isOpen) this.protocolErrorsInRow += 1;
    this.totals.reads += 1;
    this.totals.errors += 1;
    this.totals.errorsByKind[kind] = (this.totals.errorsByKind[kind] ?? 0) + 1;
    this.pushOutcome(false);
    if (isOpen || this.failuresInRow >= (this.options.settings.downAfterFailures ?? 3)) {
      this.outage.failure(this.clock.now(), { ...describe(error), kind });
    }
  }

  private pushOutcome(good: boolean): void {
    this.outcomes.push({ atMs: this.clock.now(), good });
    this.noteQosClass();
  }

  private armStaleCheck(): void {
    if (this.staleTimer !== undefined) this.clock.clearTimeout(this.staleTimer);
    this.staleTimer = this.clock.setTimeout(() => {
      this.staleTimer = undefined;
      if (this.running) this.noteQosClass();
    }, this.options.settings.meterStaleMs);
  }

  /** Logs and reports a change of QoS class: after each request, each loop turn, and a change of charging or fault state. */
  private noteQosClass(): void {
    const qos = this.qos();
    if (qos.qosClass === this.qosClass) return;
    const previous = this.qosClass;
    this.qosClass = qos.qosClass;
    const better = QOS_ORDER.indexOf(qos.qosClass) > QOS_ORDER.indexOf(previous);
    this.log.log(better ? 'notice' : 'warning', LOG_EVENTS.meterQos, {
      qos: qos.qosClass,
      previous,
      success_rate: Math.round(qos.successRate * 1000) / 1000,
      requests: this.outcomes.length,
      window_ms: this.options.settings.qosWindowMs,
      stale: this.isStale(this.clock.now()),
    });
    this.options.onQosChange?.(qos);
  }

  private reopenReasonAfter(kind: string): ReopenReason | undefined {
    if (kind === 'io') return 'port_lost';
    if (kind === 'hung') return 'hung';
    if (this.protocolErrorsInRow >= this.options.settings.maxConsecutiveErrors) return 'protocol_errors';
    return undefined;
  }

  private async watchdogs(): Promise<void> {
    if (!this.meter || !this.running) return;
    const nowMs = this.clock.now();
    const { staleIdleMs, meterStaleMs, reopenAfterMs } = this.options.settings;
    const staleAfterMs = this.charging ? meterStaleMs : staleIdleMs;
    const silentMs = nowMs - Math.max(this.lastGoodMs ?? this.openedAtMs, this.openedAtMs);
    if (silentMs >= staleAfterMs) return this.reopen('stale', undefined, { silent_ms: silentMs, charging: this.charging });
    if (nowMs - this.openedAtMs >= reopenAfterMs) {
      this.nextOpenPlanned = true;
      return this.reopen('preventive', undefined, { open_ms: nowMs - this.openedAtMs });
    }
  }

  private async reopen(reason: ReopenReason, error?: unknown, fields: LogFields = {}): Promise<void> {
    this.log.notice(LOG_EVENTS.meterReopen, { reason, ...fields, ...(error === undefined ? {} : describe(error)) });
    this.protocolErrorsInRow = 0;
    await this.closeMeter();
  }

  private async closeMeter(): Promise<void> {
    const meter = this.meter;
    this.meter = undefined;
    await meter?.close().catch(() => undefined);
  }

  private backoffCapMs(): number {
    const { backoffMaxMs, pollIntervalMs, meterStaleMs } = this.options.settings;
    if (this.recovering) return Math.min(backoffMaxMs, pollIntervalMs);
    return this.charging ? Math.min(backoffMaxMs, Math.max(pollIntervalMs, meterStaleMs / 2)) : backoffMaxMs;
  }

  /** Full jitter over a ceiling that doubles with each failure in a row, capped closer while charging or recovering. */
  private backoffMs(): number {
    return this.backoff.nextDelayMs(this.backoffCapMs());
  }
}
