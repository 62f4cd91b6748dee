// The contract between the controller and telemetry: the controller hands over events and readings
// and never waits for a broker; the pipeline makes them durable and delivers them.
import type { MeterReading } from '../../drivers/types.js';
import type { ChargeState, FaultCode, TelemetryEvent } from '../charging/types.js';

/** An event as delivered: the core's event plus a per-charge-point sequence number and a unique id. */
export interface DeliveredEvent extends TelemetryEvent {
  seq: number;
  id: string;
}

export interface LinkStatus {
  enabled: boolean;
  connected: boolean;
  lastError?: string;
}

/** The local store's lag: writes its worker thread has not confirmed (from memory, never a database read). */
export interface StoreLag {
  state: 'opening' | 'ok' | 'failing' | 'stalled' | 'down' | 'closed';
  /** Session events (and due CONSUMO) not yet committed, and how long the oldest has waited. */
  pending: number;
  oldestPendingAgeMs: number;
  writeFailures: number;
}

export interface TelemetryStatus {
  store: StoreLag;
  kafka: LinkStatus;
  /** With MQTT on: messages waiting for the broker, and meter samples dropped from a full offline queue. */
  mqtt: LinkStatus & { queued?: number; droppedMeter?: number };
  outbox: { depth: number; oldestAgeMs: number; droppedConsumo: number; bytes: number };
}

export interface TelemetryPipeline {
  start(): Promise<void>;
  /**
   * Returns at once (never blocks on a broker or the disk). The promise resolves true once a session
   * event is committed to the ledger (CONSUMO: once committed or acknowledged by Kafka), false if it
   * could not be kept; it never rejects. The controller acts on the relay without waiting for it.
   */
  publish(event: TelemetryEvent): Promise<boolean>;
  /** The charge point as the controller sees it at start, so the first retained MQTT status is complete. */
  publishStatus(status: ChargePointStatus): void;
  /** Latest meter reading, for MQTT /meter at its own rate. */
  publishReading(reading: MeterReading, state: ChargeState): void;
  /** Flushes what can be flushed within the deadline, then closes the links. */
  stop(deadlineMs?: number): Promise<void>;
  status(): TelemetryStatus;
}

/** The fields every retained MQTT status carries. */
export interface ChargePointStatus {
  state: ChargeState;
  in_service: boolean;
  faults: FaultCode[];
}

/** A broker link behind which kafkajs or mqtt.js live: bounded, never blocking the caller forever. */
export interface MessageSink {
  start(): Promise<void>;
  /** Resolves once the broker acknowledged every message (Kafka acks=all); rejects on timeout or error. */
  send(topic: string, messages: Array<{ key: string; value: string }>): Promise<void>;
  stop(): Promise<void>;
  status(): LinkStatus;
}

/** What goes to MQTT: a session event, a meter sample, or the retained charge-point state. */
export type MqttMessageKind = 'session' | 'meter' | 'status';

/** The MQTT link: fire and forget for the caller, QoS 1 and a bounded offline queue inside. */
export interface MqttSink {
  start(): Promise<void>;
  /** Queues one message for `<prefix>/<cp_id>/<kind>`; never blocks, never throws. */
  publish(kind: MqttMessageKind, payload: string): void;
  /** Publishes `/online false` (retained) and disconnects, waiting at most deadlineMs. */
  stop(deadlineMs?: number): Promise<void>;
  status(): LinkStatus & { queued: number; droppedMeter: number };
}

/** A protocol line (`AUTORIZAR_SUMINISTRO#<driver>`, `PARAR`, `REANUDAR`) from a command topic; may answer with a reply line. */
export type CommandHandler = (line: string) => string | void | Promise<string | void>;
