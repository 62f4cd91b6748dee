// The simulator's control channel: one command a line over loopback TCP, one reply a line, so a
// test process or a person (nc 127.0.0.1 PORT) can change the meter while it runs.
import { createServer, type Server, type Socket } from 'node:net';
import type { MeterSimulator, SimBehaviour } from './simulator.js';

export const CONTROL_HELP = [
  'silent on|off       stop or resume answering',
  'power <W>           total power drawn (the import register follows)',
  'import <kWh>        set the import register (a replaced meter)',
  'corrupt <0..1>      share of answers with a broken CRC',
  'drop <0..1>         share of requests left unanswered',
  'noise <0..1>        share of answers with noise bytes in front',
  'split <0..1>        share of answers sent in two pieces',
  'delay <ms>          delay before each answer',
  'exception <n>|off   answer every read with exception n',
  'truth               JSON: values, registers, behaviour, counts, the last 20 answers',
  'behaviour           JSON: the current behaviour',
  'help                this list',
];

const SHARES: Record<string, keyof SimBehaviour> = { corrupt: 'corruptShare', drop: 'dropShare', noise: 'noiseShare', split: 'splitShare' };

function number(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= min && value <= max ? value : undefined;
}

/** Applies one control line; returns the reply: OK, ERR <why>, or one line of JSON. */
export function applyControl(sim: MeterSimulator, line: string): string {
  const [command = '', argument] = line.trim().split(/\s+/);
  const set = (patch: Partial<SimBehaviour>) => {
    sim.setBehaviour(patch);
    return 'OK';
  };
  const share = SHARES[command];
  if (share) {
    const value = number(argument, 0, 1);
    return value === undefined ? `ERR ${command} takes a share from 0 to 1` : set({ [share]: value });
  }
  switch (command) {
    case 'silent':
      return argument === 'on' || argument === 'off' ? set({ silent: argument === 'on' }) : 'ERR silent takes on or off';
    case 'power': {
      const value = number(argument, 0, 1e6);
      return value === undefined ? 'ERR power takes watts, e.g. power 11000' : set({ powerW: value });
    }
    case 'import': {
      const value = number(argument, 0, 1e8);
      if (value === undefined) return 'ERR import takes kWh, e.g. import 1234.5';
      sim.setImportKwh(value);
      return 'OK';
    }
    case 'delay': {
      const value = number(argument, 0, 600_000);
      return value === undefined ? 'ERR delay takes milliseconds' : set({ delayMs: value });
    }
    case 'exception': {
      if (argument === 'off') return set({ exceptionCode: 0 });
      const value = number(argument, 1, 255);
      return value === undefined || !Number.isInteger(value) ? 'ERR exception takes a code 1..255 or off' : set({ exceptionCode: value });
    }
    case 'truth': {
      const truth = sim.truth();
      return JSON.stringify({ ...truth, served: truth.served.slice(-20) });
    }
    case 'behaviour':
      return JSON.stringify(sim.behaviour());
    case 'help':
      return CONTROL_HELP.join(' | ');
    default:
      return `ERR unknown command ${JSON.stringify(command)}; try help`;
  }
}

export interface ControlServer {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:port (0 = any free port) for control lines. */
export async function startControlServer(sim: MeterSimulator, port: number): Promise<ControlServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setEncoding('utf8');
    let pending = '';
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim()) socket.write(`${applyControl(sim, line)}\n`);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
