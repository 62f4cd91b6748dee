// What Linux says about a process and the machine: CPU ticks, resident memory and bytes written,
// from /proc. Figures are differences between two samples, so each benchmark picks its window.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, cpus, totalmem } from 'node:os';

/** Clock ticks per second of utime/stime in /proc/PID/stat (USER_HZ). */
export const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  atMs: number;
  /** utime + stime of the process, in seconds. */
  cpuS: number;
  rssKb: number;
  /** Peak resident set (VmHWM). */
  peakRssKb: number;
  /** Bytes the process caused to be sent to the storage layer (/proc/PID/io write_bytes). */
  writeBytes: number;
  /** Bytes passed to write(2) and friends, whatever the target (wchar). */
  writeCallBytes: number;
}

export function sampleProcess(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return {
    atMs: Date.now(),
    cpuS: ticks / CLOCK_TICKS_PER_S,
    rssKb: fieldOf(status, 'VmRSS'),
    peakRssKb: fieldOf(status, 'VmHWM'),
    writeBytes: fieldOf(io, 'write_bytes'),
    writeCallBytes: fieldOf(io, 'wchar'),
  };
}

function fieldOf(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** CPU share (of one core, 0..1) and bytes written per hour between two samples of one process. */
export function between(from: ProcSample, to: ProcSample): { windowS: number; cpuShare: number; writeBytesPerHour: number; writeCallBytesPerHour: number } {
  const windowS = (to.atMs - from.atMs) / 1000;
  return {
    windowS,
    cpuShare: (to.cpuS - from.cpuS) / windowS,
    writeBytesPerHour: ((to.writeBytes - from.writeBytes) * 3600) / windowS,
    writeCallBytesPerHour: ((to.writeCallBytes - from.writeCallBytes) * 3600) / windowS,
  };
}

/** Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle + iowait
  const total = values.reduce((sum, v) => sum + v, 0);
  return { busy: total - idle, total };
}

/** Share (0..1) of all cores busy between two machineTicks() samples. */
export function machineBusyShare(from: { busy: number; total: number }, to: { busy: number; total: number }): number {
  return (to.busy - from.busy) / Math.max(1, to.total - from.total);
}

/** The 1, 5 and 15-minute load averages, as /proc/loadavg gives them. */
export function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface MachineInfo {
  uname: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  arch: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return {
    uname: execFileSync('uname', ['-a'], { encoding: 'utf8' }).trim(),
    cpuModel: model,
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    arch: arch(),
  };
}
