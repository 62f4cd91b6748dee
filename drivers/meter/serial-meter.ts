// The production meter: an Eastron meter on a serial port, built from the `meter` settings.
import { systemClock, type Clock } from './clock.js';
import { ModbusEnergyMeter } from './modbus-meter.js';
import { bitsPerChar, ModbusRtuClient } from './modbus-rtu.js';
import type { MeterModel } from './registers.js';
import { SerialPortTransport, type SerialLineSettings } from './serial-transport.js';

export interface SerialMeterSettings extends SerialLineSettings {
  model: MeterModel;
  unit: number;
  timeoutMs: number;
  retries: number;
}

/** A fresh meter (port closed) each call: the link calls it again for every reopening. */
export function createSerialMeter(settings: SerialMeterSettings, clock: Clock = systemClock): ModbusEnergyMeter {
  const transport = new SerialPortTransport(settings);
  const client = new ModbusRtuClient({
    transport,
    baud: settings.baud,
    bitsPerChar: bitsPerChar(settings.parity, settings.stopBits),
    timeoutMs: settings.timeoutMs,
    retries: settings.retries,
    clock,
  });
  return new ModbusEnergyMeter({ client, unit: settings.unit, model: settings.model, now: () => clock.now() });
}
