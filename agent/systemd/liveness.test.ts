import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHeartbeats } from './liveness.js';

describe('heartbeats', () => {
  it('are alive while every part beats within its limit', () => {
    let now = 0;
    const heartbeats = createHeartbeats({ main_loop: 2000, meter: 30_000 }, () => now);
    now = 1500;
    heartbeats.beat('main_loop');
    now = 3000;
    assert.deepEqual(heartbeats.check(), { ok: true });
  });

  it('name each part that stayed silent past its limit', () => {
    let now = 0;
    const heartbeats = createHeartbeats({ main_loop: 2000, meter: 30_000, relay: 2000 }, () => now);
    now = 2001;
    heartbeats.beat('main_loop');
    assert.deepEqual(heartbeats.check(), { ok: false, stalled: ['relay'] });
    now = 30_001;
    assert.deepEqual(heartbeats.check(), { ok: false, stalled: ['main_loop', 'meter', 'relay'] });
  });

  it('count a part that never beat from their creation', () => {
    let now = 100;
    const heartbeats = createHeartbeats({ meter: 500 }, () => now);
    now = 600;
    assert.deepEqual(heartbeats.check(), { ok: true });
    now = 601;
    assert.deepEqual(heartbeats.check(), { ok: false, stalled: ['meter'] });
  });

  it('refuse a beat from a part nobody registered, so a typo cannot hide a stall', () => {
    const heartbeats = createHeartbeats({ meter: 500 });
    assert.throws(() => heartbeats.beat('metre'), /unknown liveness part "metre"/);
  });
});
