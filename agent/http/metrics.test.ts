import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentSnapshot } from '../snapshot.js';
import { createAgentMetrics } from './metrics.js';
import { promtoolCheckMetrics } from './testing/promtool.js';
import { assertPromtoolClean } from './testing/promtool-check.js';
import { healthySnapshot } from './testing/snapshot-fixture.js';

/** The value of one sample line, e.g. sample(text, 'charger_charging_state{state="Charging"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function render(snapshot: AgentSnapshot): Promise<string> {
  return createAgentMetrics(() => snapshot).render();
}

const reading = { importKwh: 1234.5, exportKwh: 0.5, powerW: 7400, voltageV: [230, 231, 229], currentA: [10.7, 10.7, 10.8], phasePowerW: [2466, 2467, 2467], frequencyHz: 49.98, takenAtMs: Date.now() };

/** promtool must run in CI; on a workstation without it the lint test is skipped, saying why. */
describe('metrics', () => {
  it('a charging agent with a reading passes promtool check metrics', async (t) => {
    const text = await render(healthySnapshot({ lastReading: reading }));
    assert.ok(text.includes('charger_charging_state'), 'the exposition is not empty');
    await assertPromtoolClean(t, text);
  });

  it('a faulted agent without a reading passes promtool check metrics', async (t) => {
    const text = await render(
      healthySnapshot({ state: 'Faulted', faults: [{ code: 'relay_welded', sinceMs: Date.now(), latched: true }], session: undefined }),
    );
    await assertPromtoolClean(t, text);
  });

  it('the promtool check is not vacuous: it rejects a gauge named like a counter', async (t) => {
    const result = await promtoolCheckMetrics('# HELP bad_total A gauge.\n# TYPE bad_total gauge\nbad_total 1\n');
    if (!result.available) return void t.skip('promtool not installed');
    assert.notEqual(result.exitCode, 0);
    assert.match(result.output, /non-counter metrics should not have "_total" suffix/);
  });

  it('exports the charging state as one series per state, 1 for the current one', async () => {
    const text = await render(healthySnapshot({ state: 'Finishing' }));
    assert.equal(sample(text, 'charger_charging_state{state="Finishing"}'), 1);
    for (const other of ['Available', 'Authorized', 'Charging', 'Unavailable', 'Faulted']) {
      assert.equal(sample(text, `charger_charging_state{state="${other}"}`), 0);
    }
  });

  it('exports relay command and feedback separately, so a welded contactor shows', async () => {
    const text = await render(healthySnapshot({ relay: { commandedClosed: false, feedbackClosed: true } }));
    assert.equal(sample(text, 'charger_relay_commanded_closed'), 0);
    assert.equal(sample(text, 'charger_relay_feedback_closed'), 1);
  });

  it('exports meter counts, errors by kind, success ratio and QoS class', async () => {
    const base = healthySnapshot();
    const text = await render(healthySnapshot({ meter: { ...base.meter, qosClass: 'critical', successRate: 0.3, reads: 200, errors: 140, errorsByKind: { timeout: 100, crc: 40 } } }));
    assert.equal(sample(text, 'charger_meter_reads_total'), 200);
    assert.equal(sample(text, 'charger_meter_errors_total{kind="timeout"}'), 100);
    assert.equal(sample(text, 'charger_meter_errors_total{kind="crc"}'), 40);
    assert.equal(sample(text, 'charger_meter_errors_total{kind="io"}'), 0, 'known kinds are exported at 0');
    assert.equal(sample(text, 'charger_meter_success_ratio'), 0.3);
    assert.equal(sample(text, 'charger_meter_qos_class{class="critical"}'), 1);
    assert.equal(sample(text, 'charger_meter_qos_class{class="healthy"}'), 0);
  });

  it('exports session energy, outbox depth and age in seconds, brokers and health checks by result', async () => {
    const base = healthySnapshot();
    const text = await render(
      healthySnapshot({
        telemetry: { ...base.telemetry, mqtt: { enabled: true, connected: false }, outbox: { depth: 7, oldestAgeMs: 90_500, droppedConsumo: 3, bytes: 4096 } },
        healthChecks: { ok: 10, ko: 2 },
      }),
    );
    assert.equal(sample(text, 'charger_session_energy_kwh'), 1.25);
    assert.equal(sample(text, 'charger_outbox_depth'), 7);
    assert.equal(sample(text, 'charger_outbox_oldest_age_seconds'), 90.5);
    assert.equal(sample(text, 'charger_outbox_dropped_consumo_total'), 3);
    assert.equal(sample(text, 'charger_broker_connected{broker="kafka"}'), 1);
    assert.equal(sample(text, 'charger_broker_connected{broker="mqtt"}'), 0);
    assert.equal(sample(text, 'charger_broker_enabled{broker="mqtt"}'), 1);
    assert.equal(sample(text, 'charger_health_checks_total{result="ok"}'), 10);
    assert.equal(sample(text, 'charger_health_checks_total{result="ko"}'), 2);
  });

  it('exports active faults by code, and none once they clear', async () => {
    let snapshot = healthySnapshot({ faults: [{ code: 'meter_stale', sinceMs: 1, latched: true }] });
    const metrics = createAgentMetrics(() => snapshot);
    assert.equal(sample(await metrics.render(), 'charger_fault_active{code="meter_stale"}'), 1);
    snapshot = healthySnapshot();
    assert.equal(sample(await metrics.render(), 'charger_fault_active{code="meter_stale"}'), undefined);
  });

  it('exports the last reading per phase, and no reading series without one', async () => {
    const withReading = await render(healthySnapshot({ lastReading: reading }));
    assert.equal(sample(withReading, 'charger_meter_power_watts{phase="total"}'), 7400);
    assert.equal(sample(withReading, 'charger_meter_voltage_volts{phase="L2"}'), 231);
    assert.equal(sample(withReading, 'charger_meter_energy_kwh{register="import"}'), 1234.5);
    const without = await render(healthySnapshot());
    assert.equal(sample(without, 'charger_meter_power_watts{phase="total"}'), undefined);
  });

  it('exports current per phase, the supply frequency and the export register of the last reading', async () => {
    const text = await render(healthySnapshot({ lastReading: reading }));
    assert.deepEqual(['L1', 'L2', 'L3'].map((phase) => sample(text, `charger_meter_current_amperes{phase="${phase}"}`)), [10.7, 10.7, 10.8]);
    assert.equal(sample(text, 'charger_meter_frequency_hertz'), 49.98);
    assert.equal(sample(text, 'charger_meter_energy_kwh{register="export"}'), 0.5);
    // a model without the frequency or export register (SDM72D-M) leaves those series out rather than report 0
    const { frequencyHz: _f, exportKwh: _e, ...totalsOnly } = reading;
    const bare = await render(healthySnapshot({ lastReading: totalsOnly }));
    assert.equal(sample(bare, 'charger_meter_frequency_hertz'), undefined);
    assert.equal(sample(bare, 'charger_meter_energy_kwh{register="export"}'), undefined);
    const none = await render(healthySnapshot());
    assert.equal(sample(none, 'charger_meter_current_amperes{phase="L1"}'), undefined);
  });

  it('includes the process metrics', async () => {
    const text = await render(healthySnapshot());
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0);
    assert.ok(text.includes('nodejs_eventloop_lag_seconds'));
  });
});
