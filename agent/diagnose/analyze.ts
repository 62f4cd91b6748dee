// The analysis behind `charger-agent diagnose`: a pure function from journal entries to a report.
// Collectors each follow one thread through the journal (the unit's lifecycle as PID 1 tells it,
// link outages, faults, meter QoS, the telemetry backlog) and note occurrences of problems; the
// problems are then grouped and judged from the catalogue, which holds all severities and advice.
import {
  CONFIG_EXIT_STATUS,
  EVENT_FIELDS,
  EVENT_PROBLEMS,
  FAILURE_RESULTS,
  OUTAGE_LINKS,
  PROBLEMS,
  PROCESS_BOUNDARY_EVENTS,
  QOS_CLASSES,
  SEVERITY_ORDER,
  faultProblem,
  type OutageLink,
  type ProblemKind,
  type Severity,
} from './catalogue.js';
import type { DiagnoseEntry } from './journal-entry.js';
import { classifyManagerMessage, type ManagerEvent } from './manager-messages.js';

export interface Problem {
  kind: ProblemKind;
  severity: Severity;
  title: string;
  count: number;
  first: string;
  last: string;
  units: string[];
  /** Up to MAX_EVIDENCE occurrences: time, unit and what was seen. */
  evidence: string[];
  causes: string[];
  actions: string[];
}

export interface Incident {
  at: string;
  unit: string;
  kind: ProblemKind;
  detail: string;
}

export interface Outage {
  link: string;
  unit: string;
  from: string;
  to: string;
  durationMs: number;
  /** up: the link came back; process_end: the process stopped or restarted first; ongoing: down at the end of the journal. */
  end: 'up' | 'process_end' | 'ongoing';
  failures?: number;
}

/** A stretch of time the meter link spent in one quality class (the agent logs each change). */
export interface QosPeriod {
  unit: string;
  qosClass: string;
  from: string;
  to: string;
  durationMs: number;
  /** The success rate when the class was entered, when the line said it. */
  successRate?: number;
}

export interface BacklogSummary {
  samples: number;
  maxDepth: number;
  maxDepthAt: string;
  lastDepth: number;
  maxOldestAgeMs?: number;
  dropped: number;
}

export interface DiagnoseReport {
  period?: { from: string; to: string };
  entries: number;
  units: string[];
  lifecycle: { starts: number; restarts: number; watchdogKills: number; crashes: number; incidents: Incident[] };
  faults: Array<{ fault: string; count: number; cleared: number; first: string; last: string }>;
  meter: { outages: Outage[]; totalDownMs: number; qos: QosPeriod[]; timeInClassMs: Record<string, number> };
  brokers: { outages: Outage[] };
  backlog?: BacklogSummary;
  problems: Problem[];
  notes: string[];
}

interface Occurrence {
  kind: ProblemKind;
  timeMs: number;
  unit: string;
  detail: string;
}

interface Collector {
  onEntry(entry: DiagnoseEntry): void;
  finish(endMs: number): void;
}

const MAX_EVIDENCE = 5;
/** Occurrences of one problem in one unit closer than this are one episode (an app line and PID 1's account of the same exit). */
const EPISODE_MS = 5000;
/** A watchdog_stalled line this long before a watchdog timeout explains it. */
const STALL_EXPLAINS_KILL_MS = 60_000;

const iso = (ms: number) => new Date(ms).toISOString();
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

// ---------------------------------------------------------------- lifecycle (PID 1's account)

interface OpenIncident {
  startMs: number;
  watchdog?: string;
  exit?: { code: string; status: number; name?: string };
  result?: string;
}

class LifecycleCollector implements Collector {
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

// ---------------------------------------------------------------- link outages

interface OpenOutage {
  fromMs: number;
  failures?: number;
}

class OutageCollector implements Collector {
  readonly outages: Outage[] = [];
  private readonly open = new Map<string, { link: OutageLink; unit: string; outage: OpenOutage }>();
  private readonly byEvent = new Map<string, { link: OutageLink; role: 'down' | 'still' | 'up' }>();

  constructor(private readonly occur: (occurrence: Occurrence) => void) {
    for (const link of OUTAGE_LINKS) {
      this.byEvent.set(link.down, { link, role: 'down' });
      if (link.still) this.byEvent.set(link.still, { link, role: 'still' });
      this.byEvent.set(link.up, { link, role: 'up' });
    }
  }

  onEntry(entry: DiagnoseEntry): void {
    if (entry.source !== 'app' || !entry.event) return;
    if (PROCESS_BOUNDARY_EVENTS.includes(entry.event)) return this.closeUnit(entry.unit, entry.timeMs);
    const match = this.byEvent.get(entry.event);
    if (!match) return;
    const key = `${entry.unit}\u0000${match.link.link}`;
    const downMs = num(entry.fields[match.link.downMsField]);
    const failures = num(entry.fields.failures);
    const open = this.open.get(key);
    if (match.role === 'up') {
      // An outage that began before the journal's window still ends here.
      const outage = open?.outage ?? { fromMs: entry.timeMs - (downMs ?? 0) };
      if (failures !== undefined) outage.failures = failures;
      this.open.delete(key);
      this.record(match.link, entry.unit, outage, entry.timeMs, 'up');
      return;
    }
    if (open) {
      if (failures !== undefined) open.outage.failures = failures;
      return;
    }
    const fromMs = match.role === 'still' && downMs !== undefined ? entry.timeMs - downMs : entry.timeMs;
    this.open.set(key, { link: match.link, unit: entry.unit, outage: { fromMs, ...(failures !== undefined ? { failures } : {}) } });
  }

  finish(endMs: number): void {
    for (const { link, unit, outage } of this.open.values()) this.record(link, unit, outage, endMs, 'ongoing');
    this.open.clear();
    this.outages.sort((a, b) => a.from.localeCompare(b.from));
  }

  /** A process that stops or restarts takes what it knew with it; a new one logs the link down again. */
  private closeUnit(unit: string, timeMs: number): void {
    for (const [key, { link, unit: owner, outage }] of this.open) {
      if (owner !== unit) continue;
      this.open.delete(key);
      this.record(link, unit, outage, timeMs, 'process_end');
    }
  }

  private record(link: OutageLink, unit: string, outage: OpenOutage, endMs: number, end: Outage['end']): void {
    const durationMs = Math.max(0, endMs - outage.fromMs);
    this.outages.push({
      link: link.link,
      unit,
      from: iso(outage.fromMs),
      to: iso(endMs),
      durationMs,
      end,
      ...(outage.failures !== undefined ? { failures: outage.failures } : {}),
    });
    const how = { up: 'then back', process_end: 'until the process stopped', ongoing: 'still down at the end of the journal' }[end];
    const failures = outage.failures !== undefined ? `, ${outage.failures} failures` : '';
    this.occur({ kind: link.problem, timeMs: outage.fromMs, unit, detail: `${link.link} down for ${formatDuration(durationMs)} (${how}${failures})` });
  }
}

// ---------------------------------------------------------------- faults

class FaultCollector implements Collector {
  private readonly faults = new Map<string, { count: number; cleared: number; firstMs: number; lastMs: number }>();

  constructor(private readonly occur: (occurrence: Occurrence) => void) {}

  onEntry(entry: DiagnoseEntry): void {
    if (entry.source !== 'app' || (entry.event !== 'fault_raised' && entry.event !== 'fault_cleared')) return;
    const fault = str(entry.fields[EVENT_FIELDS.fault]) ?? 'unknown';
    if (entry.event === 'fault_raised') {
      const seen = this.faults.get(fault) ?? { count: 0, cleared: 0, firstMs: entry.timeMs, lastMs: entry.timeMs };
      seen.count += 1;
      seen.lastMs = entry.timeMs;
      this.faults.set(fault, seen);
      this.occur({ kind: faultProblem(fault), timeMs: entry.timeMs, unit: entry.unit, detail: `fault ${fault}${describeFields(entry.fields, [EVENT_FIELDS.fault])}` });
    } else {
      const seen = this.faults.get(fault);
      if (seen) seen.cleared += 1;
    }
  }

  finish(): void {}

  summary(): DiagnoseReport['faults'] {
    return [...this.faults]
      .map(([fault, seen]) => ({ fault, count: seen.count, cleared: seen.cleared, first: iso(seen.firstMs), last: iso(seen.lastMs) }))
      .sort((a, b) => b.count - a.count || a.fault.localeCompare(b.fault));
  }
}

function describeFields(fields: Record<string, unknown>, skip: string[]): string {
  const rest = Object.entries(fields).filter(([key]) => !skip.includes(key));
  return rest.length === 0 ? '' : ' ' + rest.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ');
}

// ---------------------------------------------------------------- meter QoS over time

export function qosClassOf(successRate: number): string {
  return QOS_CLASSES.find((entry) => successRate >= entry.minRate)?.qosClass ?? 'down';
}

interface OpenQosPeriod {
  fromMs: number;
  qosClass: string;
  successRate?: number;
}

/**
 * The agent logs meter_qos when the class changes, so the journal gives periods: each class holds
 * until the next change, the end of the process (whose link starts healthy again) or the journal.
 */
class QosCollector implements Collector {
  readonly periods: QosPeriod[] = [];
  private readonly open = new Map<string, OpenQosPeriod>();
  private firstMs: number | undefined;

  constructor(private readonly occur: (occurrence: Occurrence) => void) {}

  onEntry(entry: DiagnoseEntry): void {
    this.firstMs ??= entry.timeMs;
    if (entry.source !== 'app') return;
    if (entry.event && PROCESS_BOUNDARY_EVENTS.includes(entry.event)) return this.close(entry.unit, entry.timeMs);
    if (entry.event !== 'meter_qos') return;
    const rate = num(entry.fields[EVENT_FIELDS.successRate]);
    const qosClass = str(entry.fields[EVENT_FIELDS.qosClass]) ?? (rate !== undefined ? qosClassOf(rate) : undefined);
    if (!qosClass) return;
    const previous = str(entry.fields[EVENT_FIELDS.previousQosClass]);
    // The journal began inside the previous period: it ran at least from the first entry.
    if (!this.open.has(entry.unit) && previous) this.open.set(entry.unit, { fromMs: this.firstMs, qosClass: previous });
    this.close(entry.unit, entry.timeMs);
    this.open.set(entry.unit, { fromMs: entry.timeMs, qosClass, ...(rate !== undefined ? { successRate: rate } : {}) });
  }

  finish(endMs: number): void {
    for (const unit of [...this.open.keys()]) this.close(unit, endMs);
    this.periods.sort((a, b) => a.from.localeCompare(b.from));
  }

  timeInClassMs(): Record<string, number> {
    const total: Record<string, number> = {};
    for (const period of this.periods) total[period.qosClass] = (total[period.qosClass] ?? 0) + period.durationMs;
    return total;
  }

  private close(unit: string, endMs: number): void {
    const open = this.open.get(unit);
    this.open.delete(unit);
    if (!open) return;
    const durationMs = Math.max(0, endMs - open.fromMs);
    this.periods.push({
      unit,
      qosClass: open.qosClass,
      from: iso(open.fromMs),
      to: iso(endMs),
      durationMs,
      ...(open.successRate !== undefined ? { successRate: open.successRate } : {}),
    });
    const problem = QOS_CLASSES.find((entry) => entry.qosClass === open.qosClass)?.problem;
    if (!problem) return;
    const rate = open.successRate !== undefined ? `, ${Math.round(open.successRate * 100)}% good answers` : '';
    this.occur({ kind: problem, timeMs: open.fromMs, unit, detail: `${open.qosClass} for ${formatDuration(durationMs)}${rate}` });
  }
}

// ---------------------------------------------------------------- telemetry backlog

class BacklogCollector implements Collector {
  private samples = 0;
  private maxDepth = 0;
  private maxDepthAtMs = 0;
  private lastDepth = 0;
  private maxOldestAgeMs: number | undefined;
  private dropped = 0;

  constructor(private readonly occur: (occurrence: Occurrence) => void) {}

  onEntry(entry: DiagnoseEntry): void {
    if (entry.source !== 'app') return;
    if (entry.event === 'outbox_dropped') this.dropped += num(entry.fields[EVENT_FIELDS.dropped]) ?? 1;
    if (entry.event !== 'outbox_backlog') return;
    const depth = num(entry.fields[EVENT_FIELDS.backlogDepth]);
    if (depth === undefined) {
      // The store's own warning (e.g. full of session events) carries a reason, not a depth.
      this.occur({ kind: 'outbox_backlog', timeMs: entry.timeMs, unit: entry.unit, detail: `outbox_backlog${describeFields(entry.fields, [])}` });
      return;
    }
    const oldestAgeMs = num(entry.fields[EVENT_FIELDS.backlogOldestAgeMs]);
    this.samples += 1;
    this.lastDepth = depth;
    if (depth >= this.maxDepth) [this.maxDepth, this.maxDepthAtMs] = [depth, entry.timeMs];
    if (oldestAgeMs !== undefined) this.maxOldestAgeMs = Math.max(this.maxOldestAgeMs ?? 0, oldestAgeMs);
    if (depth > 0) {
      const age = oldestAgeMs !== undefined ? `, oldest ${formatDuration(oldestAgeMs)}` : '';
      this.occur({ kind: 'outbox_backlog', timeMs: entry.timeMs, unit: entry.unit, detail: `${depth} messages waiting${age}` });
    }
  }

  finish(): void {}

  summary(): BacklogSummary | undefined {
    if (this.samples === 0 && this.dropped === 0) return undefined;
    return {
      samples: this.samples,
      maxDepth: this.maxDepth,
      maxDepthAt: iso(this.maxDepthAtMs),
      lastDepth: this.lastDepth,
      ...(this.maxOldestAgeMs !== undefined ? { maxOldestAgeMs: this.maxOldestAgeMs } : {}),
      dropped: this.dropped,
    };
  }
}

// ---------------------------------------------------------------- events that are problems as such

class EventProblemCollector implements Collector {
  constructor(private readonly occur: (occurrence: Occurrence) => void) {}

  onEntry(entry: DiagnoseEntry): void {
    const kind = entry.source === 'app' && entry.event ? EVENT_PROBLEMS[entry.event] : undefined;
    if (kind) this.occur({ kind, timeMs: entry.timeMs, unit: entry.unit, detail: `${entry.event}${describeFields(entry.fields, [])}` });
  }

  finish(): void {}
}

// ---------------------------------------------------------------- problems

function escalated(kind: ProblemKind, count: number): Severity {
  const spec = PROBLEMS[kind] as { severity: Severity; escalate?: { atCount: number; to: Severity } };
  return spec.escalate && count >= spec.escalate.atCount ? spec.escalate.to : spec.severity;
}

export function groupProblems(occurrences: Occurrence[]): Problem[] {
  const byKind = new Map<ProblemKind, Occurrence[]>();
  for (const occurrence of [...occurrences].sort((a, b) => a.timeMs - b.timeMs)) {
    const seen = byKind.get(occurrence.kind) ?? [];
    const sameEpisode = seen.some((earlier) => earlier.unit === occurrence.unit && occurrence.timeMs - earlier.timeMs < EPISODE_MS);
    if (!sameEpisode) byKind.set(occurrence.kind, [...seen, occurrence]);
  }
  const problems = [...byKind].map(([kind, seen]): Problem => {
    const spec = PROBLEMS[kind];
    return {
      kind,
      severity: escalated(kind, seen.length),
      title: spec.title,
      count: seen.length,
      first: iso(seen[0]!.timeMs),
      last: iso(seen[seen.length - 1]!.timeMs),
      units: [...new Set(seen.map((occurrence) => occurrence.unit).filter(Boolean))],
      evidence: seen.slice(0, MAX_EVIDENCE).map((occurrence) => `${iso(occurrence.timeMs)} ${occurrence.unit || '?'}: ${occurrence.detail}`),
      causes: spec.causes,
      actions: spec.actions,
    };
  });
  return problems.sort(
    (a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || b.count - a.count || a.first.localeCompare(b.first),
  );
}

export function analyzeJournal(input: DiagnoseEntry[]): DiagnoseReport {
  const entries = [...input].sort((a, b) => a.timeMs - b.timeMs);
  const occurrences: Occurrence[] = [];
  const occur = (occurrence: Occurrence) => occurrences.push(occurrence);
  const lifecycle = new LifecycleCollector(occur);
  const outages = new OutageCollector(occur);
  const faults = new FaultCollector(occur);
  const qos = new QosCollector(occur);
  const backlog = new BacklogCollector(occur);
  const collectors: Collector[] = [lifecycle, outages, faults, qos, backlog, new EventProblemCollector(occur)];

  for (const entry of entries) for (const collector of collectors) collector.onEntry(entry);
  const endMs = entries.length > 0 ? entries[entries.length - 1]!.timeMs : 0;
  for (const collector of collectors) collector.finish(endMs);

  const meterOutages = outages.outages.filter((outage) => outage.link === 'meter');
  const backlogSummary = backlog.summary();
  return {
    ...(entries.length > 0 ? { period: { from: iso(entries[0]!.timeMs), to: iso(endMs) } } : {}),
    entries: entries.length,
    units: [...new Set(entries.map((entry) => entry.unit).filter(Boolean))].sort(),
    lifecycle: {
      starts: lifecycle.starts,
      restarts: lifecycle.restarts,
      watchdogKills: lifecycle.watchdogKills,
      crashes: lifecycle.crashes,
      incidents: lifecycle.incidents,
    },
    faults: faults.summary(),
    meter: {
      outages: meterOutages,
      totalDownMs: meterOutages.reduce((sum, outage) => sum + outage.durationMs, 0),
      qos: qos.periods,
      timeInClassMs: qos.timeInClassMs(),
    },
    brokers: { outages: outages.outages.filter((outage) => outage.link === 'kafka' || outage.link === 'mqtt') },
    ...(backlogSummary ? { backlog: backlogSummary } : {}),
    problems: groupProblems(occurrences),
    notes: notes(entries, lifecycle.managerMessages),
  };
}

function notes(entries: DiagnoseEntry[], managerMessages: number): string[] {
  if (entries.length === 0) {
    return ['no journal entries for these units in this period (not root? sudo, or join the systemd-journal group)'];
  }
  const out: string[] = [];
  if (managerMessages === 0) {
    out.push('no messages from systemd about the units: restarts and watchdog kills are invisible (read the journal as root or as a member of systemd-journal or adm)');
  }
  if (!entries.some((entry) => entry.event !== undefined)) out.push("no charger-agent event lines: is this the agent's journal?");
  return out;
}
