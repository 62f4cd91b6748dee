// The control surface of simulated hardware: physical events a person could cause at a real charge
// point (plug in, press the e-stop, weld the contactor). Kept apart from the production Hardware type:
// only the simulated hardware factory returns one, and only then are SIM# lines wired to it.

/** Injections the simulated hardware accepts (`charger-agent ctl plug`, `SIM#…` protocol lines). */
export interface HardwareSimulation {
  /** Applies one injection such as `plug`, `estop on`, `relay weld`, `power 11000`.
   *  Returns a NACK reason code (UNKNOWN_INJECTION, USAGE) when it cannot, nothing when applied. */
  inject(command: string, args: string[]): string | undefined;
  /** Names and one-line help of the supported injections. */
  readonly injections: ReadonlyArray<{ name: string; usage: string; help: string }>;
}
