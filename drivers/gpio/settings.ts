// What the GPIO driver needs to know about the wiring, in its own terms. The agent's config schema
// (gpio.*) is the one source of these values; its parsed type is assignable to these, so the agent
// passes config.gpio straight in and drivers/ never imports the schema.

/** A GPIO line: by chip label + line offset (pinctrl-rp1 17) or by raw sysfs number. */
export interface PinSettings {
  chip?: string;
  line?: number;
  sysfs?: number;
  /** The line reads 0 when the function is active (and, for an output, is driven 0 to activate). Default false. */
  activeLow?: boolean;
}

/** The lines of --hardware pi and how inputs are read. */
export interface GpioSettings {
  /** Where sysfs GPIO lives, e.g. /sys/class/gpio. */
  sysfsRoot: string;
  /** How long an input must hold a new level before the change counts. */
  debounceMs: number;
  relay?: PinSettings;
  relayFeedback?: PinSettings;
  plugPresent?: PinSettings;
  emergencyStop?: PinSettings;
  /** The protection device's (RCD's) auxiliary contact: active = tripped. */
  externalFault?: PinSettings;
  /** The dead-man output (square wave while the relay is meant to be closed). */
  heartbeat?: PinSettings;
}
