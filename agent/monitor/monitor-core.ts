// The Monitor's pure core: probe results and time in, the messages for the central system out.
// observe(config, state, result, nowMs) → { state, messages }. No sockets, no timers, no clock.
import { randomUUID } from 'node:crypto';

/** What one `STATUS?` probe of the engine found. */
export type EngineStatus = 'OK' | 'KO' | 'TIMEOUT' | 'CONNECTION_ERROR';
export type FailureType = Exclude<EngineStatus, 'OK'>;

export interface ProbeResult {
  status: EngineStatus;
  /** The line the engine answered (without the newline), null when it answered nothing. */
  engineResponse: string | null;
  /** Why a probe failed, for people: "connect ECONNREFUSED 127.0.0.1:5001". */
  detail?: string;
}

export type MonitorAction = 'register_to_central' | 'health_check' | 'report_engine_failure' | 'engine_recovered';

/**
 * A message on `monitor-events` (key cp_id). The first seven fields are the ones the central system
 * reads today: never rename them. The rest are additions.
 */
export interface MonitorMessage {
  cp_id: string;
  monitor_id: string;
  action: MonitorAction;
  /** The engine as last probed; UNKNOWN before the first probe. */
  status: EngineStatus | 'UNKNOWN';
  engine_response: string | null;
  consecutive_failures: number;
  /** ISO-8601 UTC. */
  timestamp: string;
  /** Unique per message, so the central system can drop a redelivered one. */
  message_id: string;
  /** ENGINE_FAILURE on report_engine_failure, as in the original design. */
  event_type?: 'ENGINE_FAILURE' | 'ENGINE_RECOVERED';
  failure_type?: FailureType;
  previous_status?: EngineStatus | 'UNKNOWN';
  /** health_check only: sent because the status changed, or as the periodic summary. */
  reason?: 'change' | 'summary';
  /** How long the outage lasted (engine_recovered) or has lasted so far (report_engine_failure). */
  outage_ms?: number;
  /** When the outage began: the first failed probe (ISO-8601 UTC). */
  outage_started_at?: string;
  detail?: string;
}

export interface TrackerConfig {
  cpId: string;
  monitorId: string;
  /** Consecutive failed probes before an outage is reported. */
  failureThreshold: number;
  /** 0 = no periodic health_check summary. */
  summaryEveryMs: number;
}

export interface Outage {
  sinceMs: number;
  /** The latest failure until the outage is reported; then the one reported, which the recovery repeats. */
  failureType: FailureType;
  reported: boolean;
}

export interface TrackerState {
  status: EngineStatus | 'UNKNOWN';
  engineResponse: string | null;
  consecutiveFailures: number;
  outage?: Outage;
  lastSummaryMs: number;
}

export interface TrackerStep {
  state: TrackerState;
  messages: MonitorMessage[];
}

/** The state before the first probe, and the `register_to_central` message that announces the monitor. */
export function startTracker(config: TrackerConfig, nowMs: number): TrackerStep {
  const state: TrackerState = { status: 'UNKNOWN', engineResponse: null, consecutiveFailures: 0, lastSummaryMs: nowMs };
  return { state, messages: [message(config, state, 'register_to_central', nowMs, {})] };
}

export function observe(config: TrackerConfig, previous: TrackerState, result: ProbeResult, nowMs: number): TrackerStep {
  const failed = result.status !== 'OK';
  const state: TrackerState = {
    ...previous,
    status: result.status,
    engineResponse: result.engineResponse,
    consecutiveFailures: failed ? previous.consecutiveFailures + 1 : 0,
  };
  const messages: MonitorMessage[] = [];
  const detail = result.detail === undefined ? {} : { detail: result.detail };

  if (result.status !== previous.status) {
    messages.push(message(config, state, 'health_check', nowMs, { reason: 'change', previous_status: previous.status, ...detail }));
    state.lastSummaryMs = nowMs;
  } else if (config.summaryEveryMs > 0 && nowMs - previous.lastSummaryMs >= config.summaryEveryMs) {
    messages.push(message(config, state, 'health_check', nowMs, { reason: 'summary', ...detail }));
    state.lastSummaryMs = nowMs;
  }

  if (result.status !== 'OK') {
    const outage: Outage = previous.outage?.reported ? { ...previous.outage } : { sinceMs: previous.outage?.sinceMs ?? nowMs, reported: false, failureType: result.status };
    if (!outage.reported && state.consecutiveFailures >= config.failureThreshold) {
      outage.reported = true;
      messages.push(message(config, state, 'report_engine_failure', nowMs, { event_type: 'ENGINE_FAILURE', failure_type: result.status, ...outageFields(outage, nowMs), ...detail }));
    }
    state.outage = outage;
  } else if (previous.outage) {
    if (previous.outage.reported) {
      messages.push(message(config, state, 'engine_recovered', nowMs, { event_type: 'ENGINE_RECOVERED', failure_type: previous.outage.failureType, previous_status: previous.status, ...outageFields(previous.outage, nowMs) }));
    }
    delete state.outage;
  }
  return { state, messages };
}

function outageFields(outage: Outage, nowMs: number): Pick<MonitorMessage, 'outage_ms' | 'outage_started_at'> {
  return { outage_ms: nowMs - outage.sinceMs, outage_started_at: new Date(outage.sinceMs).toISOString() };
}

function message(
  config: TrackerConfig,
  state: TrackerState,
  action: MonitorAction,
  nowMs: number,
  extra: Partial<MonitorMessage>,
): MonitorMessage {
  return {
    cp_id: config.cpId,
    monitor_id: config.monitorId,
    action,
    status: state.status,
    engine_response: state.engineResponse,
    consecutive_failures: state.consecutiveFailures,
    timestamp: new Date(nowMs).toISOString(),
    message_id: randomUUID(),
    ...extra,
  };
}
