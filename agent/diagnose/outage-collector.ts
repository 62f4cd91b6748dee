// Link outages (meter, Kafka, MQTT) from the agent's *_down / *_still_down / *_up lines, closed by
// the end of the process that logged them or of the journal.
import { OUTAGE_LINKS, PROCESS_BOUNDARY_EVENTS, type OutageLink } from './catalogue.js';
import { formatDuration, iso, num, type Collector, type Occurrence } from './collector.js';
import type { DiagnoseEntry } from './journal-entry.js';
import type { Outage } from './report.js';

interface OpenOutage {
  fromMs: number;
  failures?: number;
}

export class OutageCollector implements Collector {
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
