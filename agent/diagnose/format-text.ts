// The diagnose report for a person at a terminal: problems first, most severe first, each with what
// was seen, why it probably happened and what to do; then the threads it was built from.
import { formatDuration, type DiagnoseReport, type Outage, type Problem } from './analyze.js';

/** Local time, as journalctl shows it. */
function local(isoTime: string): string {
  const date = new Date(isoTime);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

const percent = (rate: number) => `${Math.round(rate * 100)}%`;

function problemLines(problem: Problem): string[] {
  const times = problem.count === 1 ? local(problem.first) : `${problem.count}×, ${local(problem.first)} … ${local(problem.last)}`;
  return [
    `${problem.severity.toUpperCase().padEnd(8)} ${problem.title} (${times})`,
    ...problem.evidence.map((line) => `         seen: ${line.replace(/^\S+/, (time) => local(time))}`),
    ...(problem.count > problem.evidence.length ? [`         … and ${problem.count - problem.evidence.length} more`] : []),
    `         probable causes: ${problem.causes.join('; ')}`,
    ...problem.actions.map((action) => `         do: ${action}`),
  ];
}

function outageLine(outage: Outage): string {
  const end = { ongoing: 'still down', process_end: 'until the process stopped', up: `back ${local(outage.to)}` }[outage.end];
  return `  ${outage.link.padEnd(6)} ${local(outage.from)}  ${formatDuration(outage.durationMs).padEnd(14)} ${end}${outage.failures !== undefined ? `, ${outage.failures} failures` : ''}`;
}

export function formatReport(report: DiagnoseReport): string {
  const lines: string[] = [];
  const period = report.period ? `${local(report.period.from)} → ${local(report.period.to)}` : 'no entries';
  lines.push(`charger-agent diagnose: ${period}, ${report.entries} journal entries, units: ${report.units.join(', ') || 'none'}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push('');

  lines.push(report.problems.length === 0 ? 'No problems found.' : `Problems (${report.problems.length}), most severe first:`);
  for (const problem of report.problems) lines.push(...problemLines(problem), '');

  const { starts, restarts, watchdogKills, crashes, incidents } = report.lifecycle;
  lines.push(`Lifecycle: ${starts} starts, ${restarts} restarts by systemd, ${watchdogKills} watchdog kills, ${crashes} crashes`);
  for (const incident of incidents) lines.push(`  ${local(incident.at)} ${incident.unit}: ${incident.kind}: ${incident.detail}`);

  lines.push(`Faults: ${report.faults.length === 0 ? 'none' : report.faults.map((f) => `${f.fault} ×${f.count} (cleared ${f.cleared})`).join(', ')}`);

  lines.push(`Meter: ${report.meter.outages.length} outages, ${formatDuration(report.meter.totalDownMs)} down in total`);
  for (const outage of report.meter.outages) lines.push(outageLine(outage));
  const inClass = Object.entries(report.meter.timeInClassMs);
  if (inClass.length > 0) {
    lines.push(`  link quality: ${inClass.map(([qosClass, ms]) => `${qosClass} ${formatDuration(ms)}`).join(', ')}`);
    for (const period of report.meter.qos.filter((p) => p.qosClass !== 'healthy')) {
      const rate = period.successRate !== undefined ? ` (${percent(period.successRate)} good answers)` : '';
      lines.push(`  ${period.qosClass.padEnd(8)} ${local(period.from)}  for ${formatDuration(period.durationMs)}${rate}`);
    }
  }

  lines.push(`Brokers: ${report.brokers.outages.length === 0 ? 'no outages' : `${report.brokers.outages.length} outages`}`);
  for (const outage of report.brokers.outages) lines.push(outageLine(outage));

  const backlog = report.backlog;
  if (backlog) {
    const oldest = backlog.maxOldestAgeMs !== undefined ? `, oldest waited ${formatDuration(backlog.maxOldestAgeMs)}` : '';
    lines.push(`Backlog: peak ${backlog.maxDepth} at ${local(backlog.maxDepthAt)}${oldest}; last ${backlog.lastDepth}; dropped ${backlog.dropped}`);
  } else {
    lines.push('Backlog: none reported');
  }
  return lines.join('\n') + '\n';
}
