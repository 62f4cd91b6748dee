// The analysis behind `charger-agent diagnose`: a pure function from journal entries to a report.
// Collectors each follow one thread through the journal (the unit's lifecycle as PID 1 tells it,
// link outages, faults, meter QoS, the telemetry backlog) and note occurrences of problems; the
// problems are then grouped and judged from the catalogue, which holds all severities and advice.
// The lifecycle, outage and QoS collectors have their own files; the small ones stay here.
import { EVENT_FIELDS, EVENT_PROBLEMS, PROBLEMS, SEVERITY_ORDER, faultProblem, type ProblemKind, type Severity } from './catalogue.js';
import { describeFields, formatDuration, iso, num, str, type Collector, type Occurrence } from './collector.js';
import type { DiagnoseEntry } from './journal-entry.js';
import { LifecycleCollector } from './lifecycle-collector.js';
import { OutageCollector } from './outage-collector.js';
import { QosCollector } from './qos-collector.js';
import type { BacklogSummary, DiagnoseReport, Problem } from './report.js';

export { formatDuration } from './collector.js';
export { qosClassOf } from './qos-collector.js';
export type { BacklogSummary, DiagnoseReport, Incident, Outage, Problem, QosPeriod } from './report.js';

const MAX_EVIDENCE = 5;
/** Occurrences of one problem in one unit closer than this are one episode (an app line and PID 1's account of the same exit). */
const EPISODE_MS = 5000;

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
