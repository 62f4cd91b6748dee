// What systemd (PID 1) says about a unit, as data: the message patterns of systemd 252 (Debian 12,
// Raspberry Pi OS bookworm) and the facts each one carries. A watchdog kill reads, in order:
//   charger-agent.service: Watchdog timeout (limit 10s)!
//   charger-agent.service: Killing process 812 (node) with signal SIGABRT.
//   charger-agent.service: Main process exited, code=dumped, status=6/ABRT
//   charger-agent.service: Failed with result 'watchdog'.
//   charger-agent.service: Scheduled restart job, restart counter is at 1.

export type ManagerEventKind =
  | 'watchdog_timeout'
  | 'killing'
  | 'main_exited'
  | 'failed'
  | 'restart_scheduled'
  | 'start_limit_hit'
  | 'start_timeout'
  | 'deactivated'
  | 'started';

export interface ManagerEvent {
  kind: ManagerEventKind;
  facts: Record<string, string>;
}

interface MessagePattern {
  kind: ManagerEventKind;
  pattern: RegExp;
  /** Names for the pattern's capture groups, in order. */
  captures: string[];
}

export const MANAGER_MESSAGES: MessagePattern[] = [
  { kind: 'watchdog_timeout', pattern: /Watchdog timeout \(limit ([^)]*)\)!/, captures: ['limit'] },
  { kind: 'killing', pattern: /Killing process (\d+) \(([^)]*)\) with signal (SIG\w+)/, captures: ['pid', 'comm', 'signal'] },
  { kind: 'main_exited', pattern: /Main process exited, code=(\w+), status=(\d+)(?:\/(\w+))?/, captures: ['code', 'status', 'status_name'] },
  { kind: 'failed', pattern: /Failed with result '([^']+)'/, captures: ['result'] },
  { kind: 'restart_scheduled', pattern: /Scheduled restart job, restart counter is at (\d+)/, captures: ['counter'] },
  { kind: 'start_limit_hit', pattern: /Start request repeated too quickly/, captures: [] },
  { kind: 'start_timeout', pattern: /start operation timed out/, captures: [] },
  { kind: 'deactivated', pattern: /Deactivated successfully/, captures: [] },
  { kind: 'started', pattern: /^Started /, captures: [] },
];

export function classifyManagerMessage(message: string): ManagerEvent | undefined {
  for (const { kind, pattern, captures } of MANAGER_MESSAGES) {
    const match = pattern.exec(message);
    if (!match) continue;
    const facts: Record<string, string> = {};
    captures.forEach((name, index) => {
      const value = match[index + 1];
      if (value !== undefined) facts[name] = value;
    });
    return { kind, facts };
  }
  return undefined;
}
