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

export type MonitorAction = 'register_to_central' | 'authenticated_with_central' | 'health_check' | 'report_engine_failure' | 'engine_recovered';

/**
 * The `status` of the two registration messages: REGISTERING (a central system is configured: Kafka),
 * NO_CENTRAL (none is: the registration goes only to MQTT, the webhook and the log), AUTHENTICATED
 * (the central's Kafka broker acknowledged the registration with acks=all).
 */
export type RegistrationStatus = 'REGISTERING' | 'NO_CENTRAL' | 'AUTHENTICATED';

/**
 * A message on `monitor-events` (key cp_id). The first seven fields are the ones the central system
 * reads today, with the original's types (timestamp a float of epoch seconds, engine_response a
 * string): never rename them. The rest are additions.
 */
export interface MonitorMessage {
  cp_id: string;
  monitor_id: string;
  action: MonitorAction;
  /** The engine as last probed (UNKNOWN before the first probe); the registration's on the two registration messages. */
  status: EngineStatus | 'UNKNOWN' | RegistrationStatus;
  /** The engine's answer line, or the failure word (TIMEOUT, CONNECTION_ERROR) when it gave none; "" before the first probe. */
  engine_response: string;
  consecutive_failures: number;
  /** Epoch seconds with milliseconds, as the original's time.time(): 1764623233.125. */
  timestamp: number;
  /** The same instant as ISO-8601 UTC. */
  time: string;
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
  /** register_to_central and authenticated_with_central: the engine as last probed. */
  engine_status?: EngineStatus | 'UNKNOWN';
}

export interface TrackerConfig {
  cpId: string;
  monitorId: string;
  /** Consecutive failed probes before an outage is reported. */
  failureThreshold: number;
  /** 0 = no periodic health_check summary. */
  summaryEveryMs: number;
  /** A central system to register with is configured (Kafka monitor-events). */
  hasCentral: boolean;
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
  const status = config.hasCentral ? 'REGISTERING' : 'NO_CENTRAL';
  return { state, messages: [message(config, state, 'register_to_central', nowMs, { status, engine_status: state.status })] };
}

/** The `authenticated_with_central` message, once the central system acknowledged the registration. */
export function authenticated(config: TrackerConfig, state: TrackerState, nowMs: number): MonitorMessage {
  return message(config, state, 'authenticated_with_central', nowMs, { status: 'AUTHENTICATED', engine_status: state.status });
}

/**
 * The JSON of a message, with `timestamp` always written with a fractional part (1764623233.0, not
 * 1764623233), so a consumer typing it by its JSON form sees a float, as the original sent.
 */
export function encodeMessage(message: MonitorMessage): string {
  const json = JSON.stringify(message);
  if (!Number.isInteger(message.timestamp)) return json;
  return json.replace(`"timestamp":${message.timestamp},`, `"timestamp":${message.timestamp}.0,`);
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
    engine_response: engineResponse(state),
    consecutive_failures: state.consecutiveFailures,
    timestamp: nowMs / 1000,
    time: new Date(nowMs).toISOString(),
    message_id: randomUUID(),
    ...extra,
  };
}

/** What the engine answered, else the failure word, as a string; "" before the first probe. */
function engineResponse(state: TrackerState): string {
  if (state.engineResponse !== null && state.engineResponse !== '') return state.engineResponse;
  return state.status === 'UNKNOWN' || state.status === 'OK' ? (state.engineResponse ?? '') : state.status;
}
