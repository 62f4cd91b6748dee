// How an interrupted session is billed (pure): a session a crash left open is closed with the first
// good reading after the restart when it is plausible (the relay line fell open with the process, so
// nothing flowed since: that register is the exact end), otherwise with the newest reading of the
// session that survived the crash — the ledger checkpoint, the newest CONSUMO row in the outbox, or
// the CONSUMO reading in the seq mark, whichever was taken last — and only without any of those with
// its start. The result says which, and why the first reading was not used.
import { round3 } from './ledger.js';
import type { ClosedWith, FinalReading, LedgerSession } from './types.js';

/** No vehicle charger draws more: a register that moved further while we were down is not ours to bill. */
export const MAX_PLAUSIBLE_POWER_KW = 50;

export interface DurableReading {
  kwh: number;
  importe: number;
  meterKwh?: number;
  /** When the reading was taken (ISO). */
  at: string;
}

export interface DurableConsumo {
  reading: DurableReading;
  source: 'outbox' | 'seq_mark';
}

export interface InterruptedClose {
  kwh: number;
  importe: number;
  meterKwh?: number;
  endedAt: string;
  closedWith: ClosedWith;
  rejected?: string;
  consumoSource?: DurableConsumo['source'];
}

export function closeInterrupted(session: LedgerSession, consumo: DurableConsumo | undefined, final: FinalReading | undefined): InterruptedClose {
  const checkpoint: DurableReading | undefined = session.lastReadingAt
    ? { kwh: session.kwh, importe: session.importe, meterKwh: session.lastImportKwh, at: session.lastReadingAt }
    : undefined;
  const consumoIsNewer = consumo !== undefined && (!checkpoint || Date.parse(consumo.reading.at) >= Date.parse(checkpoint.at));
  const newest = consumoIsNewer ? consumo.reading : checkpoint;
  const startKwh =
    session.startImportKwh ?? (newest?.meterKwh === undefined ? undefined : round3(newest.meterKwh - newest.kwh));
  // The supply stopped when the process died: the newest reading is the best bound we have for when.
  const endedAt = newest?.at ?? session.startedAt ?? session.authorizedAt;

  const rejected = rejectFinal(session, newest, startKwh, final);
  if (!rejected && final && startKwh !== undefined) {
    const kwh = round3(final.importKwh - startKwh);
    return {
      kwh,
      importe: Math.round(kwh * final.pricePerKwh * 10_000) / 10_000,
      meterKwh: final.importKwh,
      endedAt,
      closedWith: 'first_reading_after_restart',
    };
  }
  if (newest) {
    return {
      kwh: newest.kwh,
      importe: newest.importe,
      meterKwh: newest.meterKwh,
      endedAt,
      closedWith: consumoIsNewer ? 'last_durable_consumo' : 'last_ledger_checkpoint',
      rejected,
      consumoSource: consumoIsNewer ? consumo.source : undefined,
    };
  }
  return { kwh: session.kwh, importe: session.importe, meterKwh: startKwh, endedAt, closedWith: 'start', rejected };
}

/** Why the first reading after the restart cannot close the session; undefined when it can. */
function rejectFinal(
  session: LedgerSession,
  newest: DurableReading | undefined,
  startKwh: number | undefined,
  final: FinalReading | undefined,
): string | undefined {
  if (!final) return 'no_reading_after_restart';
  if (session.startedAt === undefined) return 'never_charged';
  if (startKwh === undefined) return 'no_start_register';
  const lastKwh = newest?.meterKwh ?? startKwh;
  const sinceMs = final.takenAtMs - Date.parse(newest?.at ?? session.startedAt);
  const movedKwh = final.importKwh - lastKwh;
  if (!(movedKwh >= 0)) return 'register_went_backwards';
  if (movedKwh > (MAX_PLAUSIBLE_POWER_KW * Math.max(0, sinceMs)) / 3_600_000) return 'implausible_jump';
  return undefined;
}
