// What the rest of the agent may ask of the charge point, whatever protocol the request came in by:
// the TCP line protocol, MQTT command topics, or a central-system client such as OCPP. The
// controller implements it; protocols depend on this and never on the controller itself.
import type { CommandResult, TelemetryEvent } from './charging/types.js';
import type { AgentSnapshot } from './snapshot.js';

/** A request to change the charge point. */
export type ChargeCommand =
  | { kind: 'authorize'; driverId: string }
  | { kind: 'stop' }
  | { kind: 'resume' }
  | { kind: 'reset' };

/**
 * Accepted, or refused with a stable code as its reason: the core's (BUSY, BAD_ID, UNAVAILABLE,
 * FAULTED, RELAY_WELDED, …) and SHUTTING_DOWN while the agent stops.
 */
export type CommandOutcome = CommandResult;

export interface ChargePoint {
  /** Runs one command through the charging core; `source` names who asked (a peer address, "mqtt", "ocpp"). */
  command(command: ChargeCommand, source: string): CommandOutcome;
  /** True while no fault is active; counted as one health check (STATUS?, HEALTH_CHECK). */
  healthCheck(): boolean;
  /** What the agent knows about itself now. */
  snapshot(): AgentSnapshot;
  /** Every telemetry event the core emits, after it was handed to the telemetry pipeline. Returns the unsubscribe function. */
  onTelemetry(listener: (event: TelemetryEvent) => void): () => void;
}
