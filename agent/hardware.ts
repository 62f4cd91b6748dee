// Builds the hardware the config asks for: simulated or Raspberry Pi GPIO relay and inputs, and a
// simulated or Modbus RTU meter. The only place that chooses between real and simulated drivers.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkGpioAccess, createPiGpio } from '../drivers/gpio/pi-hardware.js';
import { createSimHardware } from '../drivers/sim/sim-hardware.js';
import type { SimMeter } from '../drivers/sim/sim-meter.js';
import type { HardwareSimulation } from '../drivers/sim/simulation.js';
import type { EnergyMeter, Hardware } from '../drivers/types.js';
import type { Config } from './config/schema.js';
import type { Logger } from './logging/logger.js';

export interface HardwareSetup {
  kind: 'sim' | 'pi';
  hardware: Hardware;
  /** A meter with its port closed; called again for every reopening. */
  createMeter: () => EnergyMeter;
  meterLabel: string;
  /** Only for simulated relay and inputs: the injections SIM# lines drive. */
  simulation?: HardwareSimulation;
}

export function resolveHardwareKind(config: Config): 'sim' | 'pi' {
  if (config.hardware !== 'auto') return config.hardware;
  return config.gpio.relay && existsSync(config.gpio.sysfsRoot) ? 'pi' : 'sim';
}

/**
 * Throws a DriverError (GPIO_*) when --hardware pi cannot reach its GPIO: the CLI exits 1 on it
 * (78 for GPIO_CONFIG: a pin missing or doubled), see cli/exit-codes.ts.
 * The serial stack (serialport and its native bindings, ~16 MB of RSS) loads only for a Modbus meter.
 */
export async function createHardware(config: Config, log: Logger): Promise<HardwareSetup> {
  const kind = resolveHardwareKind(config);
  let hardware: Hardware;
  let simMeter: SimMeter | undefined;
  let simulation: HardwareSimulation | undefined;
  // the simulated meter keeps its register in the state directory, so a demo crash does not start it again
  const meterStatePath = config.meter.driver === 'sim' ? join(config.stateDir, 'sim-meter.json') : undefined;
  if (kind === 'pi') {
    checkGpioAccess(config.gpio);
    const gpio = createPiGpio(config.gpio, log);
    hardware = { ...gpio, release: async () => gpio.release() };
  } else {
    const sim = createSimHardware({ ...config.sim, meterTimeoutMs: config.meter.timeoutMs, heartbeat: config.gpio.heartbeat !== undefined, meterStatePath });
    ({ hardware, simulation, simMeter } = sim);
  }
  if (config.meter.driver === 'modbus') {
    const { createSerialMeter } = await import('../drivers/meter/serial-meter.js');
    const { path, baud, parity, stopBits, model, unit, timeoutMs, retries } = config.meter;
    const settings = { path, baud, parity, stopBits, model, unit, timeoutMs, retries };
    return { kind, hardware, simulation, createMeter: () => createSerialMeter(settings), meterLabel: `modbus ${model} unit ${unit} on ${path} at ${baud} baud` };
  }
  if (!simMeter) {
    // pi relay and inputs with a simulated meter: a bench set-up without RS-485
    simMeter = createSimHardware({ ...config.sim, meterTimeoutMs: config.meter.timeoutMs, meterStatePath }).simMeter;
  }
  const meter = simMeter;
  return { kind, hardware, simulation, createMeter: () => meter, meterLabel: 'simulated meter' };
}
