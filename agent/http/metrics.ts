// GET /metrics: the agent's snapshot in the Prometheus text format, through prom-client on a
// registry of our own (no global state, so two agents in one test process do not collide).
// Every value is read from one snapshot per scrape; counters mirror the agent's own counts.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ChargeState } from '../charging/types.js';
import type { AgentSnapshot, QosClass } from '../snapshot.js';

const CHARGE_STATES: ChargeState[] = ['Available', 'Authorized', 'Charging', 'Finishing', 'Unavailable', 'Faulted'];
const QOS_CLASSES: QosClass[] = ['healthy', 'degraded', 'critical', 'down'];
/** Always exported, at 0 when none happened, so rate() works from the first scrape. */
const METER_ERROR_KINDS = ['crc', 'timeout', 'exception', 'garbage', 'partial', 'io'];
const BROKERS = ['kafka', 'mqtt'] as const;

export interface AgentMetrics {
  readonly contentType: string;
  /** The exposition text for the snapshot taken now. */
  render(): Promise<string>;
}

export function createAgentMetrics(snapshot: () => AgentSnapshot): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });

  const m = {
    info: gauge('charger_info', 'Constant 1, labelled with the charge point id and agent version.', ['cp_id', 'version']),
    uptime: gauge('charger_uptime_seconds', 'Seconds since the agent started.'),
    inService: gauge('charger_in_service', '1 when the charge point is in service (not stopped by the central system).'),
    plugged: gauge('charger_vehicle_plugged', '1 when a vehicle is plugged in.'),
    state: gauge('charger_charging_state', 'Charging state: 1 for the current state, 0 for the others.', ['state']),
    faults: gauge('charger_fault_active', '1 for each active fault, by code.', ['code']),
    relayCommanded: gauge('charger_relay_commanded_closed', '1 when the agent commands the contactor closed.'),
    relayFeedback: gauge('charger_relay_feedback_closed', '1 when the feedback contact reports the contactor closed.'),
    sessionEnergy: gauge('charger_session_energy_kwh', 'Energy delivered in the current session in kWh, 0 without a session.'),
    sessionActive: gauge('charger_session_active', '1 while a charging session exists.'),
    meterReads: counter('charger_meter_reads_total', 'Meter read requests made.'),
    meterErrors: counter('charger_meter_errors_total', 'Failed meter read requests, by kind.', ['kind']),
    meterSuccess: gauge('charger_meter_success_ratio', 'Share of good meter requests in the sliding window, 0 to 1.'),
    meterQos: gauge('charger_meter_qos_class', 'Meter quality class: 1 for the current class, 0 for the others.', ['class']),
    meterConnected: gauge('charger_meter_connected', '1 when the meter port is open and answering.'),
    meterPower: gauge('charger_meter_power_watts', 'Active power at the last good reading, per phase and total.', ['phase']),
    meterVoltage: gauge('charger_meter_voltage_volts', 'Voltage per phase at the last good reading.', ['phase']),
    meterCurrent: gauge('charger_meter_current_amperes', 'Current per phase at the last good reading.', ['phase']),
    meterEnergy: gauge('charger_meter_energy_kwh', 'Cumulative energy registers (import, export) at the last good reading, in kWh.', ['register']),
    outboxDepth: gauge('charger_outbox_depth', 'Telemetry events waiting in the outbox.'),
    outboxAge: gauge('charger_outbox_oldest_age_seconds', 'Age of the oldest event waiting in the outbox, 0 when empty.'),
    outboxBytes: gauge('charger_outbox_bytes', 'Bytes used by the outbox.'),
    outboxDropped: counter('charger_outbox_dropped_consumo_total', 'CONSUMO samples dropped because the outbox was full.'),
    storePending: gauge('charger_store_pending', 'Writes the local store has not confirmed yet (session events, due CONSUMO).'),
    storePendingAge: gauge('charger_store_oldest_pending_age_seconds', 'Age of the oldest write the local store has not confirmed, 0 when none.'),
    brokerEnabled: gauge('charger_broker_enabled', '1 when the broker link is configured.', ['broker']),
    brokerConnected: gauge('charger_broker_connected', '1 when the broker link is connected.', ['broker']),
    healthChecks: counter('charger_health_checks_total', 'STATUS? health checks answered on the TCP port, by result.', ['result']),
  };
  // No label to hang its absence on: registered only while the last reading has a frequency.
  const FREQUENCY = 'charger_meter_frequency_hertz';
  const meterFrequency = new Gauge({ name: FREQUENCY, help: 'Supply frequency at the last good reading, where the meter model has the register.', registers: [] });
  collectDefaultMetrics({ register: registry });
  // prom-client names these gauges *_total, which `promtool check metrics` rejects as non-counters;
  // nodejs_active_handles / _requests / _resources (by type) carry the same counts.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }

  function update(s: AgentSnapshot): void {
    m.info.reset();
    m.info.set({ cp_id: s.cpId, version: s.version }, 1);
    m.uptime.set(s.uptimeSeconds);
    m.inService.set(Number(s.inService));
    m.plugged.set(Number(s.plugged));
    for (const state of CHARGE_STATES) m.state.set({ state }, Number(state === s.state));
    m.faults.reset();
    for (const fault of s.faults) m.faults.set({ code: fault.code }, 1);
    m.relayCommanded.set(Number(s.relay.commandedClosed));
    m.relayFeedback.set(Number(s.relay.feedbackClosed));
    m.sessionEnergy.set(s.session?.kwh ?? 0);
    m.sessionActive.set(Number(s.session !== undefined));

    setCounter(m.meterReads, s.meter.reads);
    m.meterErrors.reset();
    for (const kind of new Set([...METER_ERROR_KINDS, ...Object.keys(s.meter.errorsByKind)])) {
      m.meterErrors.inc({ kind }, s.meter.errorsByKind[kind] ?? 0);
    }
    m.meterSuccess.set(s.meter.successRate);
    for (const qos of QOS_CLASSES) m.meterQos.set({ class: qos }, Number(qos === s.meter.qosClass));
    m.meterConnected.set(Number(s.meter.connected));
    updateReading(s);

    const { outbox } = s.telemetry;
    m.outboxDepth.set(outbox.depth);
    m.outboxAge.set(outbox.depth > 0 ? outbox.oldestAgeMs / 1000 : 0);
    m.outboxBytes.set(outbox.bytes);
    setCounter(m.outboxDropped, outbox.droppedConsumo);
    m.storePending.set(s.telemetry.store.pending);
    m.storePendingAge.set(s.telemetry.store.oldestPendingAgeMs / 1000);
    for (const broker of BROKERS) {
      m.brokerEnabled.set({ broker }, Number(s.telemetry[broker].enabled));
      m.brokerConnected.set({ broker }, Number(s.telemetry[broker].connected));
    }
    m.healthChecks.reset();
    m.healthChecks.inc({ result: 'ok' }, s.healthChecks.ok);
    m.healthChecks.inc({ result: 'ko' }, s.healthChecks.ko);
  }

  /** Without a reading these series are absent rather than a misleading 0 (hence the labels). */
  function updateReading(s: AgentSnapshot): void {
    m.meterPower.reset();
    m.meterVoltage.reset();
    m.meterCurrent.reset();
    m.meterEnergy.reset();
    const reading = s.lastReading;
    const frequencyShown = registry.getSingleMetric(FREQUENCY) !== undefined;
    if (reading?.frequencyHz === undefined) {
      if (frequencyShown) registry.removeSingleMetric(FREQUENCY);
    } else {
      meterFrequency.set(reading.frequencyHz);
      if (!frequencyShown) registry.registerMetric(meterFrequency);
    }
    if (!reading) return;
    m.meterPower.set({ phase: 'total' }, reading.powerW);
    reading.phasePowerW.forEach((watts, i) => m.meterPower.set({ phase: `L${i + 1}` }, watts));
    reading.voltageV.forEach((volts, i) => m.meterVoltage.set({ phase: `L${i + 1}` }, volts));
    reading.currentA.forEach((amperes, i) => m.meterCurrent.set({ phase: `L${i + 1}` }, amperes));
    m.meterEnergy.set({ register: 'import' }, reading.importKwh);
    if (reading.exportKwh !== undefined) m.meterEnergy.set({ register: 'export' }, reading.exportKwh);
  }

  return {
    contentType: registry.contentType,
    async render() {
      update(snapshot());
      return registry.metrics();
    },
  };
}

/** A counter that mirrors a count kept elsewhere. */
function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}
