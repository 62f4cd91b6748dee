/** Exit codes of every command (sysexits.h where one fits). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a bad config from restart-looping. */
  config: 78,
} as const;
