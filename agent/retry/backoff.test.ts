import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../drivers/meter/seeded-random.js';
import { Backoff } from './backoff.js';

describe('backoff with full jitter', () => {
  it('the ceiling doubles from initialMs with each failure and stops at maxMs', () => {
    const backoff = new Backoff({ initialMs: 250, maxMs: 5_000, random: () => 0 });
    const ceilings: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      ceilings.push(backoff.ceilingMs());
      backoff.nextDelayMs();
    }
    assert.deepEqual(ceilings, [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
  });

  it('each wait is a whole number of ms from 0 up to, not including, its ceiling', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 3_000, random: seededRandom(1) });
    for (let i = 0; i < 500; i += 1) {
      if (i % 7 === 0) backoff.reset();
      const ceilingMs = backoff.ceilingMs();
      const delayMs = backoff.nextDelayMs();
      assert.ok(Number.isInteger(delayMs) && delayMs >= 0 && delayMs < ceilingMs, `wait ${delayMs} outside [0, ${ceilingMs})`);
    }
    const lowest = new Backoff({ initialMs: 100, maxMs: 3_000, random: () => 0 });
    const highest = new Backoff({ initialMs: 100, maxMs: 3_000, random: () => 0.999_999 });
    assert.deepEqual([lowest.nextDelayMs(), lowest.nextDelayMs(), lowest.nextDelayMs()], [0, 0, 0]);
    assert.deepEqual([highest.nextDelayMs(), highest.nextDelayMs(), highest.nextDelayMs()], [99, 199, 399]);
  });

  it('a fleet that failed together spreads its retries over the whole range instead of retrying in lockstep', () => {
    const fleet = Array.from({ length: 1_000 }, (_, i) => new Backoff({ initialMs: 1_000, maxMs: 60_000, random: seededRandom(i + 1) }));
    // Five failures in a row each: the sixth wait has a ceiling of 32 s for every charge point.
    for (const backoff of fleet) for (let i = 0; i < 5; i += 1) backoff.nextDelayMs();
    const waits = fleet.map((backoff) => backoff.nextDelayMs());
    const perSecond = new Array<number>(32).fill(0);
    for (const waitMs of waits) perSecond[Math.floor(waitMs / 1_000)]! += 1;
    assert.ok(perSecond.every((count) => count > 0), 'every second of the range gets some retries');
    assert.ok(Math.max(...perSecond) <= 60, `at most 6 % of the fleet in any one second, got ${Math.max(...perSecond)}`);
    const meanMs = waits.reduce((sum, waitMs) => sum + waitMs, 0) / waits.length;
    assert.ok(meanMs > 14_000 && meanMs < 18_000, `mean wait ${meanMs} ms is about half the 32 s ceiling`);
  });

  it('a success resets the next wait to the first ceiling', () => {
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000, random: () => 0.5 });
    assert.deepEqual([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()], [100, 200, 400]);
    assert.equal(backoff.failures, 3);
    backoff.reset();
    assert.equal(backoff.failures, 0);
    assert.equal(backoff.ceilingMs(), 200);
    assert.equal(backoff.nextDelayMs(), 100);
  });

  it('a cap for the moment narrows the ceiling without losing the count of failures', () => {
    const backoff = new Backoff({ initialMs: 1_000, maxMs: 60_000, random: () => 0.5 });
    for (let i = 0; i < 6; i += 1) backoff.nextDelayMs();
    assert.equal(backoff.ceilingMs(), 60_000);
    assert.equal(backoff.nextDelayMs(5_000), 2_500);
    assert.equal(backoff.ceilingMs(999_999), 60_000, 'a cap never widens maxMs');
  });

  it('refuses settings that cannot make a backoff, with a code', () => {
    assert.throws(() => new Backoff({ initialMs: 0, maxMs: 1_000 }), /BACKOFF_SETTINGS/);
    assert.throws(() => new Backoff({ initialMs: 1_000, maxMs: Number.NaN }), /BACKOFF_SETTINGS/);
  });

  it('an initialMs above maxMs starts at maxMs', () => {
    assert.equal(new Backoff({ initialMs: 60_000, maxMs: 20 }).ceilingMs(), 20);
  });
});
