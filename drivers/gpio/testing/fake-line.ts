// Test aids only, never imported by production code: an in-memory GpioLine with a shared journal
// (to assert the order of opens, writes and releases across lines) and a manual clock.
import type { Timers } from '../input.js';
import type { GpioLine, Level, LineDirection, LineEdge, LineOpener } from '../line.js';

export class FakeLine implements GpioLine {
  level: Level;
  released = false;
  private readonly watchers = new Set<(level: Level) => void>();

  constructor(
    readonly sysfs: number,
    readonly direction: LineDirection,
    readonly edge: LineEdge,
    private readonly journal: string[],
    initial: Level = 0,
  ) {
    this.level = direction === 'high' ? 1 : direction === 'low' ? 0 : initial;
    journal.push(`open ${sysfs} ${direction} ${edge}`);
  }

  read(): Level {
    this.assertOpen();
    return this.level;
  }

  write(level: Level): void {
    this.assertOpen();
    this.level = level;
    this.journal.push(`write ${this.sysfs} ${level}`);
  }

  watch(onLevel: (level: Level) => void): void {
    this.watchers.add(onLevel);
  }

  unwatch(onLevel: (level: Level) => void): void {
    this.watchers.delete(onLevel);
  }

  release(): void {
    this.assertOpen();
    this.released = true;
    this.watchers.clear();
    this.journal.push(`release ${this.sysfs}`);
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  /** The wire changes level and the edge is reported, as onoff does on an interrupt. */
  drive(level: Level): void {
    this.level = level;
    for (const watcher of [...this.watchers]) watcher(level);
  }

  private assertOpen(): void {
    // onoff's value fd is closed by unexport: any later use fails.
    if (this.released) throw new Error(`EBADF: GPIO ${this.sysfs} used after release`);
  }
}

/** A LineOpener over FakeLines; `failOn` makes opening that sysfs number throw. */
export class FakeGpio {
  readonly journal: string[] = [];
  readonly lines = new Map<number, FakeLine>();

  constructor(
    private readonly initialLevels: Record<number, Level> = {},
    private readonly failOn: Record<number, Error> = {},
  ) {}

  readonly open: LineOpener = (sysfs, direction, edge) => {
    const failure = this.failOn[sysfs];
    if (failure) {
      this.journal.push(`fail ${sysfs}`);
      throw failure;
    }
    const line = new FakeLine(sysfs, direction, edge, this.journal, this.initialLevels[sysfs]);
    this.lines.set(sysfs, line);
    return line;
  };

  line(sysfs: number): FakeLine {
    const line = this.lines.get(sysfs);
    if (!line) throw new Error(`GPIO ${sysfs} was never opened`);
    return line;
  }
}

/** Timers that fire only when the test advances the clock. */
export class ManualTimers implements Timers {
  nowMs = 0;
  private nextId = 1;
  private readonly due = new Map<number, { atMs: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { atMs: this.nowMs + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  get pendingCount(): number {
    return this.due.size;
  }

  /** Moves the clock forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      const next = [...this.due].filter(([, t]) => t.atMs <= endMs).sort(([, a], [, b]) => a.atMs - b.atMs)[0];
      if (!next) break;
      const [id, timer] = next;
      this.due.delete(id);
      this.nowMs = timer.atMs;
      timer.callback();
    }
    this.nowMs = endMs;
  }
}
