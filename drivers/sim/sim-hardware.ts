// --hardware sim: a contactor with a feedback contact, plug-present, e-stop and external-fault
// inputs, and a meter, all in memory, driven by injections (`charger-agent ctl plug`, `SIM#PLUG`).
// The hardware and its simulation are returned apart: the controller gets only the Hardware.
import type { Hardware } from '../types.js';
import type { HardwareSimulation } from './simulation.js';
import { SimInput } from './sim-input.js';
import { SimMeter } from './sim-meter.js';
import { SimPulseOutput } from './sim-pulse-output.js';
import { SimRelay, type ContactMode } from './sim-relay.js';

export interface SimHardwareOptions {
  powerW: number;
  initialImportKwh: number;
  voltageV: number;
  phases: 1 | 3;
  relayFollowMs: number;
  meterTimeoutMs: number;
  /** Simulate the dead-man output (gpio.heartbeat is configured): its timer costs CPU, so only then. */
  heartbeat?: boolean;
  /** Where the simulated meter keeps its import register across restarts; absent = it starts at initialImportKwh. */
  meterStatePath?: string;
}

export interface SimHardware {
  /** What the controller drives, as it would a Raspberry Pi's. */
  hardware: Hardware;
  /** The injections (`SIM#…`, `ctl plug`). */
  simulation: HardwareSimulation;
  simMeter: SimMeter;
  simRelay: SimRelay;
  heartbeat?: SimPulseOutput;
}

interface Injection {
  name: string;
  usage: string;
  help: string;
  /** Returns a NACK reason, or nothing when applied. */
  apply: (args: string[]) => string | void;
}

const ON_OFF: Record<string, boolean> = { on: true, off: false };

export function createSimHardware(options: SimHardwareOptions): SimHardware {
  const relay = new SimRelay(options.relayFollowMs);
  const plugPresent = new SimInput(false);
  const emergencyStop = new SimInput(false);
  const externalFault = new SimInput(false);
  const heartbeat = options.heartbeat ? new SimPulseOutput() : undefined;
  const meter = new SimMeter({
    powerW: options.powerW,
    initialImportKwh: options.initialImportKwh,
    voltageV: options.voltageV,
    phases: options.phases,
    timeoutMs: options.meterTimeoutMs,
    statePath: options.meterStatePath,
    flowing: () => relay.feedback.read() && plugPresent.read(),
  });
  // integrate the energy up to every change of whether current flows
  relay.feedback.watch(() => meter.advance());
  plugPresent.watch(() => meter.advance());

  const contactModes: Record<string, ContactMode> = { weld: 'welded', stick: 'stuck_open', normal: 'normal' };
  const injections: Injection[] = [
    { name: 'plug', usage: 'plug', help: 'a vehicle plugs in', apply: () => plugPresent.set(true) },
    { name: 'unplug', usage: 'unplug', help: 'the vehicle unplugs', apply: () => plugPresent.set(false) },
    { name: 'fault', usage: 'fault', help: 'an external protection device trips', apply: () => externalFault.set(true) },
    { name: 'recover', usage: 'recover', help: 'the external protection device resets', apply: () => externalFault.set(false) },
    {
      name: 'estop', usage: 'estop on|off', help: 'press or release the emergency stop',
      apply: ([state]) => (state !== undefined && state in ON_OFF ? emergencyStop.set(ON_OFF[state]!) : 'USAGE'),
    },
    {
      name: 'meter', usage: 'meter silent|back', help: 'the meter stops or resumes answering',
      apply: ([state]) => (state === 'silent' || state === 'back' ? meter.setSilent(state === 'silent') : 'USAGE'),
    },
    {
      name: 'relay', usage: 'relay weld|stick|normal', help: 'weld the contactor closed, stick it open, or heal it',
      apply: ([mode]) => (mode !== undefined && mode in contactModes ? relay.setMode(contactModes[mode]!) : 'USAGE'),
    },
    {
      name: 'power', usage: 'power <W>', help: 'the power the vehicle draws',
      apply: ([watts]) => (watts !== undefined && /^\d+(\.\d+)?$/.test(watts) ? meter.setPowerW(Number(watts)) : 'USAGE'),
    },
  ];
  const byName = new Map(injections.map((injection) => [injection.name, injection]));

  const simulation: HardwareSimulation = {
    injections: injections.map(({ name, usage, help }) => ({ name, usage, help })),
    inject: (command, args) => {
      const injection = byName.get(command);
      if (!injection) return 'UNKNOWN_INJECTION';
      return injection.apply(args) ?? undefined;
    },
  };

  const hardware: Hardware = {
    relay,
    relayFeedback: relay.feedback,
    plugPresent,
    emergencyStop,
    externalFault,
    heartbeat,
    async release() {
      relay.release();
      heartbeat?.release();
      await meter.close();
    },
  };
  return { hardware, simulation, simMeter: meter, simRelay: relay, heartbeat };
}
