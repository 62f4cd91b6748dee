// The whole hardware world of the agent: a few small interfaces with units in their names.
// The charging core and the controller depend on these and on nothing else in drivers/.

/** One good reading of the energy meter. Absent phases (single-phase meters) are omitted. */
export interface MeterReading {
  /** Cumulative imported active energy, the billing register. */
  importKwh: number;
  /** Total active power, positive when importing. */
  powerW: number;
  voltageV: number[];
  currentA: number[];
  phasePowerW: number[];
  /** Cumulative exported energy, where the model has it. */
  exportKwh?: number;
  /** Supply frequency, where the model has it. */
  frequencyHz?: number;
  /** When the reading was taken (epoch milliseconds), never when it was republished. */
  takenAtMs: number;
  /** When the read of it began (epoch milliseconds), where the driver knows: the meter sampled its registers after this. */
  requestedAtMs?: number;
}

export interface EnergyMeter {
  /** Reads every register of a full reading; rejects with a DriverError on any failure. */
  read(): Promise<MeterReading>;
  open(): Promise<void>;
  close(): Promise<void>;
}

/** The contactor coil output. close() energises it; open() is the safe state. */
export interface Relay {
  close(): void;
  open(): void;
  /** Drives the line open and releases it. Safe to call twice. */
  release(): void;
}

/** A digital input such as the relay feedback contact, the plug-present switch or the e-stop. */
export interface DigitalInput {
  /** Current logical value (active-low already applied): true = active. */
  read(): boolean;
  /**
   * The line's logical value this instant, before any debounce (read() may still give the level
   * before a change it has not confirmed). For a deadline judged late, after a stalled loop.
   */
  readNow?(): boolean;
  /** Called on every debounced logical change. Returns an unsubscribe function. */
  watch(onChange: (active: boolean) => void): () => void;
  release(): void;
}

/**
 * The dead-man output: a square wave for a charge pump / retriggerable monostable in series with the
 * contactor coil, so the coil drops when the edges stop (a frozen or dead agent, a hung Pi).
 */
export interface PulseOutput {
  /** Inverts the line: one edge. */
  toggle(): void;
  /** Drives the line to its idle (inactive) level and leaves it there. */
  hold(): void;
  /** Holds, then lets the line go. Safe to call twice. */
  release(): void;
}

/** The relay and inputs the controller gets from the hardware factory (the meter is built apart).
 *  Simulated hardware has its control surface apart, in drivers/sim/simulation.ts. */
export interface Hardware {
  relay: Relay;
  /** The contactor's auxiliary contact: active = closed. Absent when the wiring has none. */
  relayFeedback?: DigitalInput;
  /** Vehicle plugged in. */
  plugPresent: DigitalInput;
  /** Emergency stop pressed. */
  emergencyStop: DigitalInput;
  /** An external protection device tripped (e.g. the RCD's auxiliary contact), where wired. */
  externalFault?: DigitalInput;
  /** The dead-man output, where wired (gpio.heartbeat). */
  heartbeat?: PulseOutput;
  release(): Promise<void>;
}

/** A failure with a stable code and a message a person can act on. */
export class DriverError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fields: Record<string, unknown> = {},
  ) {
    super(`${code}: ${message}`);
    this.name = 'DriverError';
  }
}
