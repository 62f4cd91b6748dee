// The CSMS half of the OCPP tests: ocpp-rpc's server in strict mode (every message validated against
// the official OCPP 1.6 JSON schemas) on a free loopback port, closed when the test ends, and the
// agent's `ocpp:` settings as a config file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DevCsms, type CsmsMessage } from '../../agent/ocpp/dev-csms.js';
import { JOURNAL_FILE } from '../../agent/ocpp/journal.js';

/** Registers clean-up: a test's `(fn) => t.after(fn)`, or a suite's `after`. */
export type Cleanup = (fn: () => unknown) => void;

export async function startCsms(cleanup: Cleanup, setup?: (csms: DevCsms) => void): Promise<DevCsms> {
  const csms = new DevCsms();
  setup?.(csms);
  await csms.listen(0, '127.0.0.1');
  cleanup(() => csms.close());
  return csms;
}

/** A config file with an `ocpp:` section pointing at the CSMS; returns the `run` args that use it. */
export function ocppArgs(cleanup: Cleanup, csms: DevCsms, ocpp: Record<string, unknown> = {}): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ocpp-config-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, stringify({ ocpp: { url: `ws://127.0.0.1:${csms.port}/ocpp`, reconnectMaxS: 2, ...ocpp } }));
  return ['--config', file];
}

/** Nothing the agent sent, and nothing it answered, failed the official schemas. */
export function assertSchemaClean(csms: DevCsms): void {
  assert.deepEqual(csms.validationFailures, [], 'every message passed the OCPP 1.6 JSON schemas');
}

export function energyOf(message: CsmsMessage): number[] {
  const values = (message.params.meterValue ?? message.params.transactionData ?? []) as Array<{ sampledValue: Array<{ measurand?: string; value: string }> }>;
  return values.flatMap((v) => v.sampledValue.filter((s) => s.measurand === 'Energy.Active.Import.Register').map((s) => Number(s.value)));
}

/** The messages of one transaction (DevCsms numbers them 1, 2, … as StartTransaction arrives), in the order received. */
export function transactionMessages(csms: DevCsms, transactionId: number): CsmsMessage[] {
  const starts = csms.received.filter((m) => m.action === 'StartTransaction');
  return csms.received.filter((m) =>
    m.action === 'StartTransaction' ? starts.indexOf(m) + 1 === transactionId : (m.action === 'MeterValues' || m.action === 'StopTransaction') && m.params.transactionId === transactionId,
  );
}

/** What the agent journaled for the CSMS, as (action, time of the fact) in the order it queued them. */
export function journaledMessages(stateDir: string): string[] {
  const text = readFileSync(join(stateDir, JOURNAL_FILE), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { t: string; seq: number; action: string; payload: Record<string, any> })
    .filter((record) => record.t === 'msg')
    .sort((a, b) => a.seq - b.seq)
    .map((record) => messageKey(record.action, record.payload));
}

/** One transaction message as (action, the time of the fact it reports), to compare sent and received. */
export function messageKey(action: string, params: Record<string, any>): string {
  return `${action}@${params.timestamp ?? params.meterValue?.[0]?.timestamp}`;
}
