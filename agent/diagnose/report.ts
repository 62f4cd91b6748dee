// The shape of a `charger-agent diagnose` report: what the collectors found, and the problems judged
// from the catalogue. Text and JSON output both render this.
import type { ProblemKind, Severity } from './catalogue.js';

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
