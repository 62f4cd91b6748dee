// Figure 5, the meter link: Modbus requests and wire bytes per full reading of each supported
// Eastron model, against the meter simulator on the in-memory transport pair (counted from the
// bytes each side wrote, beside the plan's own arithmetic), and the reading cycle time of an
// SDM630 at 9600 baud 8N1: computed (bytes × 10 bits / baud, plus the 3.5-character silence the
// client keeps before each request) beside measured (simulator and the production serial meter on
// two pseudo-terminals joined by socat). A pty moves bytes as fast as the kernel copies them
// whatever the baud rate, so the measured cycle holds the software and the silences, not the
// character time: the real line takes about measured + wire time.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransportPair } from '../../drivers/meter/testing/memory-transport.js';
import { ModbusEnergyMeter } from '../../drivers/meter/modbus-meter.js';
import { interFrameSilenceMs, ModbusRtuClient } from '../../drivers/meter/modbus-rtu.js';
import { REGISTER_MAPS, wireBytes, type MeterModel } from '../../drivers/meter/registers.js';
import { createSerialMeter } from '../../drivers/meter/serial-meter.js';
import { SerialPortTransport } from '../../drivers/meter/serial-transport.js';
import { MeterSimulator } from '../../drivers/meter/simulator.js';
import type { MeterModelFigures, MeterPart } from './parts.js';
import { loadSettings, writePart } from './settings.js';
import { median, percentile, round } from './stats.js';

const BAUD = 9600;
const BITS_PER_CHAR = 10; // 8N1: start + 8 data + stop

const totalBytes = (writes: readonly Uint8Array[]) => writes.reduce((sum, bytes) => sum + bytes.length, 0);

/** Requests, attempts and bytes per full reading of one model over the in-memory pair. */
async function perReading(model: MeterModel, readings: number): Promise<MeterModelFigures> {
  const [clientSide, meterSide] = createTransportPair();
  const sim = new MeterSimulator({ transport: meterSide, model });
  await sim.start();
  const client = new ModbusRtuClient({ transport: clientSide, baud: BAUD, timeoutMs: 500, retries: 0 });
  const meter = new ModbusEnergyMeter({ client, unit: 1, model });
  await meter.open();
  const cycleMs: number[] = [];
  for (let i = 0; i < readings; i++) {
    const started = performance.now();
    await meter.read();
    cycleMs.push(performance.now() - started);
  }
  const stats = client.stats();
  await meter.close();
  await sim.stop();
  const plan = meter.plannedReads;
  return {
    model,
    registers: REGISTER_MAPS[model].registers.length,
    requestsPerReading: stats.requests / readings,
    attemptsPerReading: stats.attempts / readings,
    requestBytesPerReading: totalBytes(clientSide.writes) / readings,
    answerBytesPerReading: totalBytes(meterSide.writes) / readings,
    wireBytesPerReading: (totalBytes(clientSide.writes) + totalBytes(meterSide.writes)) / readings,
    plannedReads: plan.map((block) => ({ address: `0x${block.address.toString(16).padStart(4, '0')}`, count: block.count })),
    plannedWireBytes: wireBytes(plan),
    computedCycleMs: round(computedCycleMs(wireBytes(plan), plan.length), 2),
    inMemoryCycleMs: round(median(cycleMs), 2),
  };
}

/** Character time of every byte plus the silence before each request, at BAUD 8N1. */
function computedCycleMs(bytes: number, requests: number): number {
  return (bytes * BITS_PER_CHAR * 1000) / BAUD + requests * interFrameSilenceMs(BAUD, BITS_PER_CHAR);
}

async function startSocat(dir: string): Promise<{ agentPath: string; meterPath: string; socat: ChildProcess }> {
  const agentPath = join(dir, 'agent');
  const meterPath = join(dir, 'meter');
  const watcher = watch(dir);
  const socat = spawn('socat', [`pty,raw,echo=0,link=${agentPath}`, `pty,raw,echo=0,link=${meterPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const bothExist = () => existsSync(agentPath) && existsSync(meterPath);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socat made no pty links within 10 s')), 10_000);
      const done = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      watcher.on('change', () => bothExist() && done());
      socat.once('error', (error) => done(new Error(`socat could not start (apt-get install socat): ${error.message}`)));
      socat.once('exit', (code) => done(new Error(`socat exited with ${code}`)));
      if (bothExist()) done();
    });
  } finally {
    watcher.close();
  }
  return { agentPath, meterPath, socat };
}

/** An SDM630 read through the production serial meter over a pty pair at 9600 baud. */
async function overPty(readings: number): Promise<MeterPart['pty']> {
  const dir = mkdtempSync(join(tmpdir(), 'charger-bench-meter-'));
  const { agentPath, meterPath, socat } = await startSocat(dir);
  const sim = new MeterSimulator({ transport: new SerialPortTransport({ path: meterPath, baud: BAUD, parity: 'none', stopBits: 1 }), model: 'sdm630' });
  await sim.start();
  const meter = createSerialMeter({ path: agentPath, baud: BAUD, parity: 'none', stopBits: 1, model: 'sdm630', unit: 1, timeoutMs: 500, retries: 2 });
  try {
    await meter.open();
    const cycleMs: number[] = [];
    for (let i = 0; i < readings; i++) {
      const started = performance.now();
      await meter.read();
      cycleMs.push(performance.now() - started);
    }
    const plan = meter.plannedReads;
    const bytes = wireBytes(plan);
    const stats = meter.lineStats();
    return {
      model: 'sdm630',
      baud: BAUD,
      readings,
      requestsPerReading: plan.length,
      wireBytesPerReading: bytes,
      computed: {
        characterTimeMs: round((bytes * BITS_PER_CHAR * 1000) / BAUD, 2),
        silenceMs: round(plan.length * interFrameSilenceMs(BAUD, BITS_PER_CHAR), 2),
        cycleMs: round(computedCycleMs(bytes, plan.length), 2),
      },
      measuredPty: { p50Ms: round(median(cycleMs), 2), p99Ms: round(percentile(cycleMs, 99), 2) },
      estimatedRealLineMs: round(median(cycleMs) + (bytes * BITS_PER_CHAR * 1000) / BAUD, 2),
      lineErrors: Object.values(stats.errors).reduce((sum, n) => sum + n, 0),
    };
  } finally {
    await meter.close();
    await sim.stop();
    socat.kill('SIGTERM');
    await once(socat, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { meter } = loadSettings();
  const models = Object.keys(REGISTER_MAPS) as MeterModel[];
  const memory: MeterModelFigures[] = [];
  for (const model of models) memory.push(await perReading(model, meter.reads));
  const pty = await overPty(meter.reads);
  const part: MeterPart = { baud: BAUD, memory, pty };
  writePart('meter-link', part);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
