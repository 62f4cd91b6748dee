// A northbound interface beside the TCP protocol and Kafka (OCPP 1.6J today): it sees what the
// telemetry pipeline sees, in the same order, and sends commands through the same path as the TCP
// protocol, so a session authorized through either is one session on the core, reported to both.
import type { MeterReading } from '../drivers/types.js';
import type { ActiveFault, ChargeState, TelemetryEvent } from './charging/types.js';
import type { Request } from './protocol/commands.js';
import type { AgentSnapshot } from './snapshot.js';

/** A cheap read of the core (no store or meter statistics), for status reporting. */
export interface CoreView {
  state: ChargeState;
  inService: boolean;
  plugged: boolean;
  faults: readonly ActiveFault[];
  session?: { id: string; driverId: string; chargingSinceMs?: number };
  lastReading?: MeterReading;
}

/** What a northbound interface may ask of the agent. */
export interface AgentPort {
  /** One protocol request, answered like a TCP line (ACK#… / NACK#…). */
  handle(request: Request, peer: string): string;
  snapshot(): AgentSnapshot;
  view(): CoreView;
  /** Ends the process so systemd starts it again: soft after a clean stop, hard at once (exit non-zero). */
  restart(kind: 'soft' | 'hard'): void;
}

export interface Northbound {
  readonly name: string;
  /** Called once the agent accepts commands. Must not wait for a remote system. */
  start(agent: AgentPort): Promise<void>;
  /** Every telemetry event, synchronously, in the order the core emitted it. */
  onTelemetry(event: TelemetryEvent): void;
  /** Every good meter reading. */
  onReading(reading: MeterReading): void;
  /** After the core's shutdown step: persist what is owed, close the link (bounded by the caller). */
  stop(): Promise<void>;
}
