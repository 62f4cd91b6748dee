// The meter link's quality over time, as periods in one class, from the agent's meter_qos lines.
import { EVENT_FIELDS, PROCESS_BOUNDARY_EVENTS, QOS_CLASSES } from './catalogue.js';
import { formatDuration, iso, num, str, type Collector, type Occurrence } from './collector.js';
import type { DiagnoseEntry } from './journal-entry.js';
import type { QosPeriod } from './report.js';

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
export class QosCollector implements Collector {
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
