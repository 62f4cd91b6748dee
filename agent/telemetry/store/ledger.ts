// The session ledger inside the database (worker thread): how each session event updates a session's
// row, the checkpoint of an open session's latest reading, and what a crash left open.
import type { FaultCode, SessionEndReason, TelemetryEvent } from '../../charging/types.js';
import type { Statements } from './opening.js';
import type { DurableReading } from './billing.js';
import type { LedgerSession, SessionReading } from './types.js';

export interface SessionRow {
  id: string;
  driver_id: string;
  authorized_at: string;
  started_at: string | null;
  ended_at: string | null;
  start_import_kwh: number | null;
  last_import_kwh: number | null;
  last_reading_at: string | null;
  kwh: number;
  importe: number;
  end_reason: string | null;
  fault: string | null;
}

/** Every update is idempotent, so a commit the worker may or may not have made can be sent again. */
export function applyToLedger(statements: Statements, event: TelemetryEvent): void {
  const id = event.session_id ?? null;
  switch (event.type) {
    case 'SESSION_STARTED':
      if (id) statements.sessionStarted.run({ id, driver: event.user_id ?? '', ts: event.ts });
      return;
    case 'CP_STATUS':
      if (event.state === 'Charging') statements.chargingStarted.run({ ts: event.ts, id, start: event.meter_import_kwh ?? null });
      return;
    case 'AVERIADO':
      if (id) statements.fault.run({ id, fault: event.fault ?? null, kwh: event.kwh ?? 0, importe: event.importe ?? 0 });
      return;
    case 'SUPPLY_END': {
      if (!id) return;
      const meter = event.meter_import_kwh ?? null;
      statements.supplyEnd.run({
        id,
        ended: event.ended_at ?? event.ts,
        reason: event.reason ?? null,
        kwh: event.kwh ?? 0,
        importe: event.importe ?? 0,
        started: event.started_at ?? null,
        meter,
        start: meter === null ? null : round3(meter - (event.kwh ?? 0)),
      });
      return;
    }
    case 'CONSUMO':
      return;
  }
}

export function checkpointReading(statements: Statements, sessionId: string, reading: SessionReading): void {
  statements.checkpoint.run({
    id: sessionId,
    kwh: reading.kwh,
    importe: reading.importe,
    meter: reading.lastImportKwh ?? null,
    at: reading.readingAt,
    start: reading.startImportKwh ?? null,
  });
}

/** The reading a CONSUMO carries, as the ledger would keep it; undefined for any other event. */
export function readingOf(event: TelemetryEvent, previous?: SessionReading): SessionReading | undefined {
  if (event.type !== 'CONSUMO' || !event.session_id) return undefined;
  const kwh = event.kwh ?? 0;
  const meter = event.meter_import_kwh;
  return {
    kwh,
    importe: event.importe ?? 0,
    lastImportKwh: meter,
    startImportKwh: previous?.startImportKwh ?? (meter === undefined ? undefined : round3(meter - kwh)),
    readingAt: event.ts,
  };
}

export interface OpenSession {
  session: LedgerSession;
  /** The newest CONSUMO of the session still in the outbox (not yet acknowledged by Kafka). */
  outboxConsumo?: DurableReading;
}

/** Sessions a crash left open, each with its newest CONSUMO row. */
export function openSessions(statements: Statements): OpenSession[] {
  return (statements.openSessions.all() as SessionRow[]).map((row) => {
    const session = toLedgerSession(row);
    const value = (statements.lastConsumoOf.get(session.id) as { value: string } | undefined)?.value;
    if (!value) return { session };
    const event = JSON.parse(value) as TelemetryEvent;
    return { session, outboxConsumo: { kwh: event.kwh ?? 0, importe: event.importe ?? 0, meterKwh: event.meter_import_kwh, at: event.ts } };
  });
}

export function toLedgerSession(row: SessionRow): LedgerSession {
  return {
    id: row.id,
    driverId: row.driver_id,
    authorizedAt: row.authorized_at,
    startedAt: row.started_at ?? undefined,
    endedAt: row.ended_at ?? undefined,
    startImportKwh: row.start_import_kwh ?? undefined,
    lastImportKwh: row.last_import_kwh ?? undefined,
    lastReadingAt: row.last_reading_at ?? undefined,
    kwh: row.kwh,
    importe: row.importe,
    endReason: (row.end_reason as SessionEndReason | null) ?? undefined,
    fault: (row.fault as FaultCode | null) ?? undefined,
  };
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
