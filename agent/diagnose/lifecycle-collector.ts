// The units' lifecycle as PID 1 tells it: starts, restarts, watchdog kills, crashes, a refused
// configuration (exit 78), with the agent's own watchdog_stalled line to say what had stalled.
import { CONFIG_EXIT_STATUS, EVENT_FIELDS, FAILURE_RESULTS, PROBLEMS, type ProblemKind } from './catalogue.js';
import { formatDuration, iso, type Collector, type Occurrence } from './collector.js';
import type { DiagnoseEntry } from './journal-entry.js';
import { classifyManagerMessage, type ManagerEvent } from './manager-messages.js';
import type { Incident } from './report.js';

/** A watchdog_stalled line this long before a watchdog timeout explains it. */
const STALL_EXPLAINS_KILL_MS = 60_000;

interface OpenIncident {
  startMs: number;
  watchdog?: string;
  exit?: { code: string; status: number; name?: string };
  result?: string;
}

export class LifecycleCollector implements Collector {
  starts = 0;
  restarts = 0;
  managerMessages = 0;
  readonly incidents: Incident[] = [];
  private readonly open = new Map<string, OpenIncident>();
  private readonly lastStall = new Map<string, { timeMs: number; stalled: string }>();
  private readonly lastIncident = new Map<string, Incident>();

  constructor(private readonly occur: (occurrence: Occurrence) => void) {}

  onEntry(entry: DiagnoseEntry): void {
    if (entry.source === 'app') {
      if (entry.event === 'agent_started') this.starts += 1;
      if (entry.event === 'watchdog_stalled') this.lastStall.set(entry.unit, { timeMs: entry.timeMs, stalled: stalledParts(entry.fields) });
      return;
    }
    const event = classifyManagerMessage(entry.message);
    if (!event) return;
    this.managerMessages += 1;
    this.onManagerEvent(entry, event);
  }

  private onManagerEvent(entry: DiagnoseEntry, { kind, facts }: ManagerEvent): void {
    const unit = entry.unit;
    switch (kind) {
      case 'watchdog_timeout':
        this.incident(unit, entry.timeMs).watchdog = facts.limit ?? '?';
        return;
      case 'main_exited': {
        const exit = { code: facts.code ?? '?', status: Number(facts.status), ...(facts.status_name ? { name: facts.status_name } : {}) };
        if (exit.code === 'exited' && exit.status === 0 && !this.open.has(unit)) return;
        this.incident(unit, entry.timeMs).exit = exit;
        return;
      }
      case 'start_timeout':
        this.incident(unit, entry.timeMs).result = 'timeout';
        return;
      case 'failed':
        this.incident(unit, entry.timeMs).result = facts.result;
        this.close(unit);
        return;
      case 'deactivated':
      case 'started':
        this.close(unit);
        return;
      case 'restart_scheduled':
        this.restarts += 1;
        this.occur({ kind: 'restart', timeMs: entry.timeMs, unit, detail: this.restartReason(unit, facts.counter) });
        return;
      case 'start_limit_hit':
        this.occur({ kind: 'restart_loop', timeMs: entry.timeMs, unit, detail: 'Start request repeated too quickly' });
        return;
      case 'killing':
        return;
    }
  }

  finish(): void {
    for (const unit of [...this.open.keys()]) this.close(unit);
  }

  get watchdogKills(): number {
    return this.incidents.filter((incident) => incident.kind === 'watchdog_kill').length;
  }

  get crashes(): number {
    return this.incidents.filter((incident) => incident.kind === 'crash' || incident.kind === 'out_of_memory').length;
  }

  private incident(unit: string, timeMs: number): OpenIncident {
    let open = this.open.get(unit);
    if (!open) this.open.set(unit, (open = { startMs: timeMs }));
    return open;
  }

  private close(unit: string): void {
    const open = this.open.get(unit);
    this.open.delete(unit);
    if (!open) return;
    const kind = incidentKind(open);
    if (!kind) return;
    const incident = { at: iso(open.startMs), unit, kind, detail: this.describe(unit, open) };
    this.incidents.push(incident);
    this.lastIncident.set(unit, incident);
    this.occur({ kind, timeMs: open.startMs, unit, detail: incident.detail });
  }

  private describe(unit: string, open: OpenIncident): string {
    const parts: string[] = [];
    if (open.watchdog) parts.push(`watchdog timeout (limit ${open.watchdog})`);
    if (open.exit) parts.push(`main process ${open.exit.code}, status ${open.exit.status}${open.exit.name ? '/' + open.exit.name : ''}`);
    if (open.result) parts.push(`result '${open.result}'`);
    const stall = this.lastStall.get(unit);
    if (open.watchdog && stall && open.startMs - stall.timeMs <= STALL_EXPLAINS_KILL_MS && open.startMs >= stall.timeMs) {
      parts.push(`stalled before: ${stall.stalled} (${formatDuration(open.startMs - stall.timeMs)} earlier)`);
    }
    return parts.join('; ');
  }

  private restartReason(unit: string, counter: string | undefined): string {
    const after = this.lastIncident.get(unit);
    return `restart counter ${counter ?? '?'}${after ? ` after ${PROBLEMS[after.kind].title}` : ''}`;
  }
}

function incidentKind(open: OpenIncident): ProblemKind | undefined {
  if (open.exit?.code === 'exited' && open.exit.status === CONFIG_EXIT_STATUS) return 'config_invalid';
  if (open.result && FAILURE_RESULTS[open.result]) return FAILURE_RESULTS[open.result];
  if (open.watchdog) return 'watchdog_kill';
  if (open.exit && !(open.exit.code === 'exited' && open.exit.status === 0)) return 'crash';
  return undefined;
}

function stalledParts(fields: Record<string, unknown>): string {
  const stalled = fields[EVENT_FIELDS.stalled];
  return Array.isArray(stalled) && stalled.length > 0 ? stalled.join(', ') : 'unknown part';
}
