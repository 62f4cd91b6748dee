import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DriverError } from '../types.js';
import { FakeGpio, ManualTimers } from './testing/fake-line.js';
import { createGpioInput } from './input.js';
import type { Level } from './line.js';

function inputOn(options: { activeLow?: boolean; debounceMs?: number; initial?: Level; activeAtFirstEdge?: boolean } = {}) {
  const gpio = new FakeGpio({ 530: options.initial ?? 0 });
  const timers = new ManualTimers();
  const input = createGpioInput(gpio.open(530, 'in', 'both'), {
    activeLow: options.activeLow ?? false,
    debounceMs: options.debounceMs ?? 20,
    name: 'gpio.plugPresent',
    timers,
    activeAtFirstEdge: options.activeAtFirstEdge,
  });
  const changes: boolean[] = [];
  const unsubscribe = input.watch((active) => changes.push(active));
  return { line: gpio.line(530), timers, input, changes, unsubscribe };
}

describe('GPIO digital input', () => {
  it('active-high: a high line reads active, a low one inactive', () => {
    assert.equal(inputOn({ initial: 1 }).input.read(), true);
    assert.equal(inputOn({ initial: 0 }).input.read(), false);
  });

  it('active-low: a low line reads active, a high one inactive', () => {
    assert.equal(inputOn({ activeLow: true, initial: 0 }).input.read(), true);
    assert.equal(inputOn({ activeLow: true, initial: 1 }).input.read(), false);
  });

  it('active-low: pulling the line low is reported as becoming active', () => {
    const { line, timers, changes } = inputOn({ activeLow: true, initial: 1 });
    line.drive(0);
    timers.advance(20);
    assert.deepEqual(changes, [true]);
  });

  it('a bounce shorter than debounceMs is never reported', () => {
    const { line, timers, input, changes } = inputOn({ debounceMs: 20 });
    line.drive(1);
    timers.advance(5);
    line.drive(0);
    timers.advance(100);
    assert.deepEqual(changes, []);
    assert.equal(input.read(), false);
    assert.equal(timers.pendingCount, 0);
  });

  it('a change is reported once, only after the level has held for debounceMs', () => {
    const { line, timers, input, changes } = inputOn({ debounceMs: 20 });
    line.drive(1);
    timers.advance(3);
    line.drive(0);
    timers.advance(3);
    line.drive(1);
    timers.advance(19);
    assert.deepEqual(changes, []);
    assert.equal(input.read(), false, 'read gives the debounced value while the level settles');
    timers.advance(1);
    assert.deepEqual(changes, [true]);
    assert.equal(input.read(), true);
    timers.advance(1000);
    assert.deepEqual(changes, [true]);
  });

  it('a change is confirmed by reading the line again: one that reverted unseen is not reported', () => {
    const { line, timers, input, changes } = inputOn({ debounceMs: 20 });
    line.drive(1);
    line.level = 0; // the edge back was lost
    timers.advance(20);
    assert.deepEqual(changes, []);
    assert.equal(input.read(), false);
  });

  it('with debounceMs 0 every change is reported at once', () => {
    const { line, changes } = inputOn({ debounceMs: 0 });
    line.drive(1);
    line.drive(0);
    assert.deepEqual(changes, [true, false]);
  });

  it('a level that no edge reported is picked up by read and reported after debounceMs', () => {
    const { line, timers, input, changes } = inputOn({ debounceMs: 20 });
    line.level = 1;
    assert.equal(input.read(), false);
    timers.advance(20);
    assert.deepEqual(changes, [true]);
    assert.equal(input.read(), true);
  });

  it('readNow gives the level this instant, while read still gives the level before the unconfirmed change', () => {
    const { line, timers, input, changes } = inputOn({ activeLow: true, initial: 1 });
    line.level = 0; // no edge reported (a loop that has not run yet)
    assert.equal(input.read(), false);
    assert.equal(input.readNow!(), true);
    timers.advance(20);
    assert.deepEqual(changes, [true], 'the change is still confirmed by the debounce');
    assert.equal(input.read(), true);
  });

  it('an unsubscribed watcher hears nothing more while the others still do', () => {
    const { line, timers, input, changes, unsubscribe } = inputOn({ debounceMs: 20 });
    const other: boolean[] = [];
    input.watch((active) => other.push(active));
    unsubscribe();
    line.drive(1);
    timers.advance(20);
    assert.deepEqual(changes, []);
    assert.deepEqual(other, [true]);
  });

  it('release drops a pending change, unwatches and releases the line once', () => {
    const { line, timers, input, changes } = inputOn({ debounceMs: 20 });
    line.drive(1);
    input.release();
    input.release();
    timers.advance(100);
    assert.deepEqual(changes, []);
    assert.equal(timers.pendingCount, 0);
    assert.equal(line.watcherCount, 0);
    assert.ok(line.released);
    assert.throws(() => input.read(), (error) => error instanceof DriverError && error.code === 'GPIO_RELEASED');
  });

  it('an e-stop style input reports the first edge towards active at once, and debounces only the release', () => {
    const { line, timers, changes, input } = inputOn({ activeLow: true, initial: 1, activeAtFirstEdge: true });
    line.drive(0); // pressed
    assert.deepEqual(changes, [true], 'no debounce wait for a press');
    line.drive(1); // contact bounce
    line.drive(0);
    timers.advance(50);
    assert.deepEqual(changes, [true], 'a bounce during the press is not a release');
    assert.equal(input.read(), true);
    line.drive(1); // released
    timers.advance(19);
    assert.deepEqual(changes, [true]);
    timers.advance(1);
    assert.deepEqual(changes, [true, false], 'the release is reported once it held for debounceMs');
  });
});
