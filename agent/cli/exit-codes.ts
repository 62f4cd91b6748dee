/** Exit codes of every command (sysexits.h where one fits). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a bad config from restart-looping. */
  config: 78,
  /** EX_TEMPFAIL: an OCPP soft Reset; systemd's Restart=on-failure starts the agent again. */
  restart: 75,
} as const;

/**
 * GPIO errors only the configuration can fix: a missing or doubled pin, a chip label that names two
 * chips, a line past the chip's end. Every other GPIO error (permission, a line busy, no sysfs GPIO
 * yet, a chip whose driver has not loaded) may pass without a config change, so it exits 1 and
 * systemd starts the agent again.
 */
const GPIO_CONFIG_CODES: ReadonlySet<string> = new Set(['GPIO_CONFIG', 'GPIO_CHIP_AMBIGUOUS', 'GPIO_LINE_OUT_OF_RANGE']);

/** The exit code for an error that stopped the start: 78 only for a configuration problem. */
export function startFailureExit(code: string | undefined): number {
  return code !== undefined && GPIO_CONFIG_CODES.has(code) ? EXIT.config : EXIT.failure;
}
