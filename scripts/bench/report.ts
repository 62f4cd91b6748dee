// The figures as rows (figure, value, target, met), printed as a table and written as the README's
// Performance section. A figure that could not be measured says why instead of a value.
import type { FleetPart, SlowStoragePart } from './parts.js';
import type { FootprintResults, Outcome, Results } from './results.js';

export interface Row {
  section: string;
  figure: string;
  value: string;
  target: string;
  /** undefined: no target for this figure. */
  met?: boolean;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number | null | undefined, digits = 1) => (n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(digits)} ms`);
const pct = (share: number, digits = 1) => `${(share * 100).toFixed(digits)} %`;
const mb = (n: number) => `${n.toFixed(1)} MB`;
const bytes = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${Math.round(n)} B`);

/** Rows of one benchmark, or one row saying why it has none. */
function section<T>(name: string, outcome: Outcome<T> | undefined, rows: (data: T) => Array<Omit<Row, 'section'>>): Row[] {
  if (!outcome) return [{ section: name, figure: 'not run', value: '—', target: '—' }];
  if (!outcome.ok) return [{ section: name, figure: 'not measured', value: outcome.error.slice(0, 120), target: '—', met: false }];
  return rows(outcome.data).map((row) => ({ section: name, ...row }));
}

export function buildRows(results: Results): Row[] {
  const { parts, settings } = results;
  return [
    ...section('1 Health checks', parts.health, (h) => [
      {
        figure: `One connection per check, ${h.connections} clients: checks/s`,
        value: `${int(h.agent.connect.checksPerS)} /s = ${pct(h.ratio.connect, 0)} of ceiling (${int(h.ceiling.connect.checksPerS)} /s)`,
        target: '≥ 80 % of ceiling',
        met: h.ratio.connect >= 0.8,
      },
      {
        figure: 'One connection per check: latency p50 / p99',
        value: `${ms(h.agent.connect.p50Ms, 2)} / ${ms(h.agent.connect.p99Ms, 2)} (ceiling ${ms(h.ceiling.connect.p50Ms, 2)} / ${ms(h.ceiling.connect.p99Ms, 2)})`,
        target: '—',
      },
      {
        figure: `Kept-open connections, ${h.connections} clients: checks/s`,
        value: `${int(h.agent.keep.checksPerS)} /s = ${pct(h.ratio.keep, 0)} of ceiling (${int(h.ceiling.keep.checksPerS)} /s)`,
        target: '≥ 80 % of ceiling',
        met: h.ratio.keep >= 0.8,
      },
      {
        figure: 'Kept-open connections: latency p50 / p99',
        value: `${ms(h.agent.keep.p50Ms, 2)} / ${ms(h.agent.keep.p99Ms, 2)} (ceiling ${ms(h.ceiling.keep.p50Ms, 2)} / ${ms(h.ceiling.keep.p99Ms, 2)})`,
        target: 'p99 < 5 ms',
        met: h.agent.keep.p99Ms < 5,
      },
      {
        figure: 'Protocol server alone (health-server.ts, no controller) vs ceiling: connect / kept-open',
        value: `${pct(h.protocolRatio.connect, 0)} / ${pct(h.protocolRatio.keep, 0)}`,
        target: '—',
      },
      {
        figure: 'Load client (C, epoll) vs agent CPU, kept-open',
        value: `${pct(h.agent.keep.clientCpu, 0)} vs ${pct(h.agent.keep.serverCpu, 0)} of a core; ${h.agent.connect.errors + h.agent.keep.errors} errors; agent ${h.agentStateAfter} after`,
        target: '—',
      },
    ]),
    ...section('2 Fault reaction', parts.fault, (f) => [
      { figure: `E-stop edge → relay open (${f.trials} trials), p50 / p99`, value: `${ms(f.emergencyStop.p50, 3)} / ${ms(f.emergencyStop.p99, 3)}`, target: 'p99 < 10 ms', met: f.emergencyStop.p99 < 10 },
      {
        figure: `Feedback mismatch past its limit → relay open, p50 / p99`,
        value: `${ms(f.feedbackMismatch.p50, 2)} / ${ms(f.feedbackMismatch.p99, 2)}`,
        target: 'p99 < 10 ms',
        met: f.feedbackMismatch.p99 < 10,
      },
      { figure: 'Meter past its stale limit → relay open, p50 / p99', value: `${ms(f.meterStale.p50, 2)} / ${ms(f.meterStale.p99, 2)}`, target: 'p99 < 10 ms', met: f.meterStale.p99 < 10 },
      {
        figure: `E-stop edge through the production GPIO input driver (gpio.debounceMs ${f.limits.gpioDebounceMs} ms), p50 / p99`,
        value: `${ms(f.emergencyStopGpio.p50, 2)} / ${ms(f.emergencyStopGpio.p99, 2)}`,
        target: 'p99 < 10 ms',
        met: f.emergencyStopGpio.p99 < 10,
      },
      {
        figure: 'Event loop busy after the relay-open call (fault step: session events committed), p50 / p99',
        value: `${ms(f.meterStale.loopBusyAfterOpen.p50, 1)} / ${ms(f.meterStale.loopBusyAfterOpen.p99, 1)}`,
        target: '—',
      },
    ]),
    ...section('3 Footprint', results.startup, (s) => [
      {
        figure: `Start-up to READY (spawn → agent_ready, Kafka + MQTT on, median of ${s.runs})`,
        value: `${int(s.readyMs)} ms (bare node to its first line: ${int(s.bareNodeFirstLineMs)} ms)`,
        target: '≤ 1 s',
        met: s.readyMs <= 1000,
      },
    ]),
    ...footprintRows(results.footprint, settings.footprint),
    ...section('4 Telemetry', parts.ack, (a) => [
      { figure: `Sample → Kafka ack (acks=all, in process, ${a.sampleToAckMs.n} samples), p50 / p99`, value: `${ms(a.sampleToAckMs.p50)} / ${ms(a.sampleToAckMs.p99)}`, target: '—' },
    ]),
    ...section('4 Telemetry', results.footprint, (f) =>
      f.sampleToAppendMs
        ? [{ figure: `Sample → broker append (compiled agent, ${f.sampleToAppendMs.n} samples), p50 / p99`, value: `${ms(f.sampleToAppendMs.p50)} / ${ms(f.sampleToAppendMs.p99)}`, target: '—' }]
        : [],
    ),
    ...section('4 Telemetry', results.outage, (o) => [
      {
        figure: `Backlog after a ${(o.outageS / 60).toFixed(1)}-minute Kafka outage while charging`,
        value: o.drained
          ? `${o.backlogMessages} messages in ${o.batches} batch(es): first ${o.reconnectS} s, last ${o.drainedS} s after the broker was back` +
            (o.drainRatePerS === null ? '' : `; ${int(o.drainRatePerS)} msg/s`)
          : `not drained within the wait (${o.backlogMessages} messages seen)`,
        target: '—',
        met: o.drained && o.missing === 0 && o.duplicates === 0 ? undefined : false,
      },
      { figure: 'Messages lost / duplicated across the outage', value: `${o.missing} / ${o.duplicates} (of ${o.messagesRead})`, target: '0 / 0', met: o.missing === 0 && o.duplicates === 0 },
      {
        figure: 'Disk writes per charging hour, broker down',
        value: `${bytes(o.brokerDown.writeBytesPerHour)} to the block layer (${bytes(o.brokerDown.writeCallBytesPerHour)} through write calls, log lines included)`,
        target: '—',
      },
    ]),
    ...section('5 Meter link', parts.meter, (m) => [
      ...m.memory.map((model) => ({
        figure: `${model.model.toUpperCase()}: Modbus requests / wire bytes per full reading`,
        value: `${model.requestsPerReading} / ${model.wireBytesPerReading} B (plan ${model.plannedReads.length} / ${model.plannedWireBytes} B)`,
        target: '—',
      })),
      {
        figure: `SDM630 reading cycle at ${m.pty.baud} baud 8N1: computed / measured on a pty`,
        value: `${ms(m.pty.computed.cycleMs)} (${ms(m.pty.computed.characterTimeMs)} characters + ${ms(m.pty.computed.silenceMs, 2)} silence) / ${ms(m.pty.measuredPty.p50Ms, 2)} (p99 ${ms(m.pty.measuredPty.p99Ms, 2)}); real line ≈ ${ms(m.pty.estimatedRealLineMs)}`,
        target: '—',
      },
    ]),
    ...section('6 Fleet', parts.fleet, (f) => fleetRows(f)),
    ...section('7 Slow SD card', parts.slowStorage, (p) => slowStorageRows(p)),
  ]
    .sort((a, b) => a.section.localeCompare(b.section)) // stable: each section keeps its order
    .filter((row, i, all) => !(row.figure === 'not run' && all[i - 1]?.figure === 'not run' && all[i - 1]?.section === row.section));
}

function footprintRows(footprint: Outcome<FootprintResults> | undefined, windows: { idleMin: number; chargeMin: number }): Row[] {
  return section('3 Footprint', footprint, (f) => [
    {
      figure: `RSS after ${(f.idle.agent.windowS / 60).toFixed(1)} min idle (window ≥ ${windows.idleMin} min)`,
      value: `${mb(f.idle.agent.rssMb)} (brokers off ${mb(f.idle.agentBrokersOff.rssMb)}, bare node ${mb(f.idle.bareNode.rssMb)})`,
      target: '≤ 80 MB',
      met: f.idle.agent.rssMb <= 80,
    },
    {
      figure: `RSS after ${(f.charging.agent.windowS / 60).toFixed(1)} min charging`,
      value: `${mb(f.charging.agent.rssMb)}, peak ${mb(f.charging.agent.peakRssMb)} (brokers off ${mb(f.charging.agentBrokersOff.rssMb)}, bare node ${mb(f.charging.bareNode.rssMb)})`,
      target: '≤ 80 MB',
      met: f.charging.agent.rssMb <= 80,
    },
    {
      figure: 'CPU idle (after one session), share of one core',
      value: `${pct(f.idle.agent.cpuShare, 2)} (brokers off ${pct(f.idle.agentBrokersOff.cpuShare, 2)}, bare node ${pct(f.idle.bareNode.cpuShare, 2)})`,
      target: '—',
    },
    {
      figure: 'CPU charging at 1 Hz telemetry, Kafka + MQTT on',
      value: `${pct(f.charging.agent.cpuShare, 2)} (brokers off ${pct(f.charging.agentBrokersOff.cpuShare, 2)}, bare node ${pct(f.charging.bareNode.cpuShare, 2)})`,
      target: '≤ 2 % of one core',
      met: f.charging.agent.cpuShare <= 0.02,
    },
    {
      figure: 'Disk writes per charging hour, broker up',
      value: `${bytes(f.charging.agent.writeBytesPerHour)} to the block layer (${bytes(f.charging.agent.writeCallBytesPerHour)} through write calls, log lines included)`,
      target: '—',
    },
    {
      figure: 'Disk writes per idle hour',
      value: `${bytes(f.idle.agent.writeBytesPerHour)} to the block layer (${bytes(f.idle.agent.writeCallBytesPerHour)} through write calls, log lines included)`,
      target: '—',
    },
  ]).map((row) => ({ ...row, section: row.figure.startsWith('Disk writes per charging') ? '4 Telemetry' : row.section }));
}

/** The targets of issue 10, for the answers that must not wait on the disk. */
export const SLOW_STORAGE_TARGETS = { statusP99Ms: 50, estopP99Ms: 20, readyMs: 2000 };

const stallLabel = (stallMs: number) => (stallMs === 0 ? 'normal fsync' : `fsync +${stallMs} ms`);

export function slowStorageRows(p: SlowStoragePart): Array<Omit<Row, 'section'>> {
  const t = SLOW_STORAGE_TARGETS;
  return [
    ...p.runs.flatMap((r) => [
      {
        figure: `${stallLabel(r.stallMs)}: STATUS? every ${p.pollEveryMs} ms (${r.statusMs.n} checks), p50 / p99 / max`,
        value:
          `${ms(r.statusMs.p50, 2)} / ${ms(r.statusMs.p99, 2)} / ${ms(r.statusMs.max, 2)}` +
          (r.controlMs ? ` (a bare Node OK server polled the same way beside it: ${ms(r.controlMs.p50, 2)} / ${ms(r.controlMs.p99, 2)} / ${ms(r.controlMs.max, 2)})` : ''),
        target: `p99 < ${t.statusP99Ms} ms`,
        met: r.statusMs.p99 < t.statusP99Ms,
      },
      {
        figure: `${stallLabel(r.stallMs)}: e-stop → relay open (${r.estopMs.n} e-stops while charging), p50 / p99 / max`,
        value: `${ms(r.estopMs.p50, 2)} / ${ms(r.estopMs.p99, 2)} / ${ms(r.estopMs.max, 2)}`,
        target: `p99 < ${t.estopP99Ms} ms`,
        met: r.estopMs.p99 < t.estopP99Ms,
      },
      {
        figure: `${stallLabel(r.stallMs)}: start-up to READY (spawn → agent_ready)`,
        value: `${int(r.readyMs)} ms (the store opened in its worker ${int(r.storeOpenMs)} ms after it was asked)`,
        target: `< ${t.readyMs / 1000} s`,
        met: r.readyMs < t.readyMs,
      },
      {
        figure: `${stallLabel(r.stallMs)}: ${r.stallMs === 0 ? 'after the sessions' : 'once the stall ended'}, session events lost / duplicated on Kafka`,
        value:
          `${r.kafka.missing} / ${r.kafka.duplicated} (${r.kafka.messages} messages, ${r.sessions} sessions, seq ${r.kafka.seqInOrder ? 'in order' : 'NOT in order'}, all on Kafka ${r.kafka.drainedS} s ${r.stallMs === 0 ? 'after the last session' : 'after the stall ended'}); ` +
          `ledger ${r.ledger.sessions} of ${r.sessions} sessions, ${r.ledger.notClosed} not closed; exit ${r.exitCode}`,
        target: '0 / 0',
        met: r.kafka.missing === 0 && r.kafka.duplicated === 0 && r.kafka.seqInOrder && r.ledger.missing === 0 && r.ledger.notClosed === 0 && r.exitCode === 0,
      },
    ]),
    {
      figure: 'Load on the box during each run (loadavg before → after)',
      value: p.runs.map((r) => `${stallLabel(r.stallMs)}: ${r.loadavgBefore} → ${r.loadavgAfter}`).join('; '),
      target: '—',
    },
  ];
}

function fleetRows(f: FleetPart): Array<Omit<Row, 'section'>> {
  const best = f.steps.find((step) => step.agents === f.largestUnderLimit);
  const reason = f.memoryLimit
    ? `; ${f.memoryLimit.nextStep} agents would not fit in memory (about ${int(f.memoryLimit.needMb)} of ${int(f.memoryLimit.availableMb)} MB available)`
    : f.limitNotReached
      ? `; limit not reached, last step ${f.steps.at(-1)?.agents}`
      : '';
  return [
    {
      figure: `Largest fleet per host with telemetry p99 < ${f.p99LimitMs} ms (${f.partitions} partition: per host = per partition)`,
      value: best ? `${f.limitNotReached || f.memoryLimit ? '≥ ' : ''}${best.agents} agents (p99 ${ms(best.sampleToAppendMs.p99, 0)}, box ${pct(best.machineBusy, 0)} busy${reason})` : 'none',
      target: `p99 < ${f.p99LimitMs} ms`,
      met: best !== undefined,
    },
    ...f.steps.map((step) => ({
      figure: `  ${step.agents} agents at 1 Hz`,
      value:
        step.verdict === 'failed'
          ? `failed: ${step.error ?? ''}`
          : `p50 / p99 ${ms(step.sampleToAppendMs.p50, 0)} / ${ms(step.sampleToAppendMs.p99, 0)}, ${step.receivedMessages} msgs (${step.expectedMessages} expected), box ${pct(step.machineBusy, 0)}, ${pct(step.agentCpuMean, 1)} CPU and ${mb(step.agentRssMeanMb)} per agent`,
      target: '—',
    })),
  ];
}

export function renderTable(results: Results, rows: Row[]): string {
  const headers = ['Figure', 'Value', 'Target', 'Met'];
  const cells = rows.map((row) => [row.figure, row.value, row.target, row.met === undefined ? '—' : row.met ? 'yes' : 'NO']);
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((cell) => cell[i]!.length)));
  const line = (cols: string[]) => cols.map((col, i) => col.padEnd(widths[i]!)).join('  ');
  const out = [
    `charger-agent benchmarks — ${results.date} — ${results.settings.quick ? 'QUICK (smoke) run' : 'full run'} — ${results.elapsedS} s`,
    `machine: ${results.machine.cpuModel}, ${results.machine.cores} cores, ${results.machine.memoryGiB} GiB, Node ${results.machine.node}`,
    `uname: ${results.machine.uname}`,
    `background load before the run: ${pct(results.backgroundLoad.busyShare, 0)} of all cores busy, loadavg ${results.backgroundLoad.loadavg}`,
    ...(results.reruns?.length ? [`re-run: ${rerunText(results)}`] : []),
    '',
    line(headers),
    line(widths.map((w) => '-'.repeat(w))),
  ];
  let lastSection = '';
  rows.forEach((row, i) => {
    if (row.section !== lastSection) out.push(`[${row.section}]`);
    lastSection = row.section;
    out.push(line(cells[i]!));
  });
  return out.join('\n');
}

/** Why a target is missed, where the run itself shows it. */
function notes(results: Results): string[] {
  const out = [
    'This machine is not a Raspberry Pi: a Pi 4 core is several times slower, so read CPU shares and latencies as lower bounds for the device.',
  ];
  const footprint = results.footprint?.ok ? results.footprint.data : undefined;
  if (footprint && footprint.charging.agent.cpuShare > 0.02) {
    out.push(
      `CPU: with Kafka and MQTT off the same agent charges at ${pct(footprint.charging.agentBrokersOff.cpuShare, 2)} of a core. Most of the rest is kafkajs 2.2.4, ` +
        'which re-arms a 1 ms timer for as long as a broker connection is open, even with nothing to send (tulios/kafkajs#1556, #1704; the fix in PR #1667 is not released).',
    );
  }
  if (footprint && footprint.charging.agent.rssMb > 80) {
    out.push(`Memory: with brokers off the agent holds ${mb(footprint.charging.agentBrokersOff.rssMb)} while charging and a bare node ${mb(footprint.charging.bareNode.rssMb)}; the Kafka and MQTT clients add the rest.`);
  }
  const health = results.parts.health?.ok ? results.parts.health.data : undefined;
  if (health && (health.ratio.keep < 0.8 || health.ratio.connect < 0.8)) {
    out.push(
      `Health checks: the agent's protocol server alone, with a constant answer and no controller, reaches ${pct(health.protocolRatio.connect, 0)} (one connection per check) ` +
        `and ${pct(health.protocolRatio.keep, 0)} (kept open) of the ceiling, against ${pct(health.ratio.connect, 0)} and ${pct(health.ratio.keep, 0)} for the whole agent: ` +
        (health.protocolRatio.keep - health.ratio.keep < 0.05
          ? 'the gap is in the per-line path of agent/protocol/health-server.ts, not in the controller behind it.'
          : `the controller behind it accounts for ${Math.round((health.protocolRatio.keep - health.ratio.keep) * 100)} points of the kept-open gap, agent/protocol/health-server.ts for the rest.`),
    );
  }
  const fault = results.parts.fault?.ok ? results.parts.fault.data : undefined;
  if (fault && fault.emergencyStopGpio.p99 >= 10) {
    out.push(
      `E-stop on a Pi: the GPIO input driver reports an edge only once the level has held for gpio.debounceMs (${fault.limits.gpioDebounceMs} ms by default), ` +
        'so the reaction is that long plus the controller\'s part; acting on the first edge towards "pressed" and debouncing only the release would bring it to the controller\'s figure.',
    );
  }
  const slow = results.parts.slowStorage?.ok ? results.parts.slowStorage.data : undefined;
  if (slow) {
    const over = slow.runs.flatMap((r) => [
      ...(r.statusMs.max >= SLOW_STORAGE_TARGETS.statusP99Ms ? [`STATUS? max ${ms(r.statusMs.max, 1)} with ${stallLabel(r.stallMs)}`] : []),
      ...(r.estopMs.max >= SLOW_STORAGE_TARGETS.estopP99Ms ? [`e-stop max ${ms(r.estopMs.max, 1)} with ${stallLabel(r.stallMs)}`] : []),
    ]);
    out.push(
      'Slow SD card: the e-stop figure is an upper bound, a round trip from a separate process (connect, SIM#ESTOP#ON, the edge, the relay opened, the ACK); ' +
        'the controller\'s own edge → open is the fault-reaction row. ' +
        (over.length === 0
          ? 'Every single STATUS? and e-stop was under its target too (the issue asks for none over 50 ms / 20 ms, not only the p99).'
          : `The issue asks for no single STATUS? over 50 ms and no e-stop over 20 ms: over in this run: ${over.join('; ')}.`),
    );
  }
  return out;
}

/** Which parts were run again alone into these results, and when. */
function rerunText(results: Results): string {
  return (results.reruns ?? []).map((r) => `${r.part} run alone with BENCH_ONLY on ${r.date.slice(0, 16).replace('T', ' ')} UTC (loadavg ${r.loadavg})`).join('; ');
}

function slowStallsText(results: Results): string {
  const stalls = results.parts.slowStorage?.ok ? results.parts.slowStorage.data.runs.map((r) => r.stallMs) : (results.settings.slowStorage?.stallsMs ?? []);
  return stalls.map((stall) => (stall === 0 ? 'normal' : `${stall} ms`)).join(', ') || 'each stall';
}

export function renderMarkdown(results: Results, rows: Row[]): string {
  const { machine, settings } = results;
  const escape = (text: string) => text.replace(/\|/g, '\\|');
  const bySection = new Map<string, Row[]>();
  for (const row of rows) bySection.set(row.section, [...(bySection.get(row.section) ?? []), row]);
  const table = ['| Figure | Value | Target | Met |', '|---|---|---|---|'];
  for (const [name, sectionRows] of [...bySection.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    table.push(`| **${name.replace(/^\d /, '')}** | | | |`);
    for (const row of sectionRows) table.push(`| ${escape(row.figure.trim())} | ${escape(row.value)} | ${row.target} | ${row.met === undefined ? '—' : row.met ? 'yes' : '**no**'} |`);
  }
  return `## Performance

Measured with \`npm run bench\` on ${results.date.slice(0, 10)} (${settings.quick ? 'a quick smoke run, `BENCH_QUICK=1`: shorter windows and fewer trials than the published method' : 'the full run'}),
on ${machine.cpuModel} × ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, \`${machine.uname}\`, Node ${machine.node}.
Before the run ${pct(results.backgroundLoad.busyShare, 0)} of the machine was busy with other work (loadavg ${results.backgroundLoad.loadavg}).${results.reruns?.length ? `\nRe-run: ${rerunText(results)}.` : ''}
Every figure is a median over several runs; a comparison is a ratio measured in the same run. Raw numbers: \`.bench/results.json\`.

${table.join('\n')}

${notes(results).map((note) => `- ${note}`).join('\n')}

How each figure is measured (scripts/bench/):
- **Health checks**: the agent charges a simulated session (Kafka and MQTT on) while a C load client
  (\`tcp-load.c\`, epoll, ${settings.health.connections} connections, ${settings.health.durationS} s per run, ${settings.health.runs} runs) sends \`STATUS?\`, either
  connecting for every check as the Monitor does or on kept-open connections; the ceiling is a Node
  server that only answers \`OK\` to every line, loaded the same way in the same run, and so is the
  agent's protocol server alone (\`health-server.ts\` with a constant answer).
- **Fault reaction**: the real controller in process on simulated hardware; the relay's \`open()\` is
  timed with \`process.hrtime.bigint()\` from the e-stop edge, or from the deadline the core computed
  (feedback mismatch: command + limit; meter: last reading + stale limit). The limits are shortened
  for the bench (feedback ${results.parts.fault?.ok ? results.parts.fault.data.limits.feedbackTimeoutMs : 25} ms, meter ${results.parts.fault?.ok ? results.parts.fault.data.limits.meterStaleMs : 50} ms): the figure is the time *past* the limit. The GPIO row
  drives an in-memory line through the production input driver, set up as the Pi hardware sets up the e-stop line.
- **Footprint**: \`node dist/agent/cli.js run\` with Kafka and MQTT on, sampled from /proc (RSS, utime +
  stime, write_bytes/wchar) over an idle window of at least ${settings.footprint.idleMin} min and a charging window of ${settings.footprint.chargeMin} min, beside a bare
  \`node -e 'setInterval(()=>{},1000)'\`. The other benchmarks ran during the idle window; CPU figures are
  each process's own.
- **Telemetry**: ack latency from the production Kafka sink wrapped in process; append latency from the
  broker's LogAppendTime on \`cp_telemetry\`; the outage stops a second test Kafka with
  \`scripts/test-services.sh stop-kafka\` for at least ${settings.outage.minutes} min while the agent charges.
- **Meter link**: the simulator on the in-memory transport pair, and on two ptys joined by socat. A pty
  does not pace bytes at the baud rate, so the measured cycle is the software and the silences; the
  real line adds the character time.
- **Fleet**: N compiled agents, each charging at 1 Hz with its own cp_id and state dir, against one Kafka
  (\`cp_telemetry\` has 1 partition in the test broker); N grows through ${settings.fleet.steps.join(', ')} until p99 passes
  ${settings.fleet.p99LimitMs} ms or the box is saturated (CPU, or memory for the next step).
- **Slow SD card**: the compiled agent, Kafka and MQTT on, with every \`fsync\`/\`fdatasync\` slowed by an
  \`LD_PRELOAD\` shim (\`test/support/slow-fsync.c\`) to ${slowStallsText(results)} (normal: no shim), one run each. While a
  plain child process polls \`STATUS?\` every 20 ms (a new connection per check, as the Monitor does): the
  store opens in its worker, one session ends by unplugging, ${results.parts.slowStorage?.ok ? results.parts.slowStorage.data.estopsPerRun : 'N'} sessions end by an e-stop (each \`SIM#ESTOP#ON\`
  timed connect → ACK by another plain process; the relay is open before the ACK), one by the RCD
  tripping; then the stall ends and every session's events are read back from Kafka and the ledger.
  The same scenario as \`test/slow-storage.test.ts\`, which asserts the bounds; this only measures.

Run it: \`npm run bench\` (about 30 minutes; BENCH_IDLE_MIN, BENCH_CHARGE_MIN, BENCH_OUTAGE_MIN, BENCH_FAULT_TRIALS,
BENCH_FLEET_STEPS, BENCH_SLOW_STALLS_MS, BENCH_SLOW_ESTOPS … override single knobs), \`BENCH_QUICK=1 npm run bench\` (a few minutes, smoke only),
or one part alone, e.g. \`BENCH_ONLY=slow-storage npm run bench\` (merged into an existing \`.bench/results.json\`).
`;
}
