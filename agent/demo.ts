// `charger-agent run --demo`: scripted sessions on simulated hardware — authorize a driver, plug
// in, charge about chargeSeconds, unplug — looping until stopped, printing what happens.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from './controller.js';
import type { Config } from './config/schema.js';

const PROGRESS_EVERY_MS = 5000;

export async function runDemo(agent: Agent, config: Config, signal: AbortSignal): Promise<void> {
  const { log } = agent;
  log.notice('demo_started', {
    drivers: config.demo.drivers,
    charge_s: config.demo.chargeSeconds,
    power_w: config.sim.powerW,
    telemetry_ledger: `${config.stateDir}/charger-agent.db (list it: charger-agent sessions --state-dir ${config.stateDir})`,
    kafka: config.kafka.brokers.length > 0 ? `${config.kafka.brokers.join(',')} topic ${config.kafka.topic}` : 'off (--kafka-brokers host:port to send to cp_telemetry)',
    mqtt: config.mqtt.url ? `${config.mqtt.url} prefix ${config.mqtt.prefix}/${config.cpId}` : 'off (--mqtt-url mqtt://host:port)',
  });
  try {
    for (let round = 0; !signal.aborted; round++) {
      const driver = config.demo.drivers[round % config.demo.drivers.length]!;
      await demoSession(agent, driver, config, signal);
      await sleep(config.demo.pauseSeconds * 1000, undefined, { signal });
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}

async function demoSession(agent: Agent, driver: string, config: Config, signal: AbortSignal): Promise<void> {
  const { log } = agent;
  const authorized = agent.handleLine(`AUTORIZAR_SUMINISTRO#${driver}`, 'demo');
  log.info('demo_step', { step: 'authorize', driver, reply: authorized });
  await sleep(1000, undefined, { signal });
  log.info('demo_step', { step: 'plug', reply: agent.handleLine('SIM#PLUG', 'demo') });
  const endAtMs = Date.now() + config.demo.chargeSeconds * 1000;
  while (Date.now() < endAtMs) {
    await sleep(Math.min(PROGRESS_EVERY_MS, endAtMs - Date.now()), undefined, { signal });
    const snap = agent.snapshot();
    log.info('demo_progress', {
      state: snap.state,
      kwh: snap.session?.kwh,
      importe: snap.session?.importe,
      power_w: snap.lastReading?.powerW,
      meter_import_kwh: snap.lastReading?.importKwh,
    });
  }
  log.info('demo_step', { step: 'unplug', reply: agent.handleLine('SIM#UNPLUG', 'demo') });
}
