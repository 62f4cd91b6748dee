import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { after, describe, it } from 'node:test';
import { createRecordingLogger } from '../testing/recording-logger.js';
import { DriverError } from '../types.js';
import { FakeGpio, ManualTimers } from './testing/fake-line.js';
import { makeSysfsRoot, PI5_CHIPS } from './testing/fake-sysfs.js';
import { checkGpioAccess, createPiGpio } from './pi-hardware.js';
import type { GpioSettings } from './settings.js';

const pi5 = makeSysfsRoot(PI5_CHIPS);
after(() => pi5.cleanup());

// On the Pi 5 tree pinctrl-rp1 has base 571: lines 17..20 are sysfs 588..591.
const RP1 = (line: number, activeLow = false) => ({ chip: 'pinctrl-rp1', line, activeLow });
const FULL = {
  sysfsRoot: pi5.root,
  relay: RP1(17, true),
  relayFeedback: RP1(18),
  plugPresent: RP1(19),
  emergencyStop: RP1(20, true),
};

/** The settings the agent would pass for these pins, with the config's defaults for the rest. */
function gpioConfig(gpio: Partial<GpioSettings>): GpioSettings {
  return { sysfsRoot: '/sys/class/gpio', debounceMs: 20, ...gpio };
}

/** Runs checkGpioAccess in a child process as the unprivileged user nobody; returns its error code and message. */
function checkAsNobody(root: string, config: GpioSettings): { code: string; message: string } {
  for (let dir = root; dir.startsWith(tmpdir() + sep); dir = dirname(dir)) chmodSync(dir, 0o755);
  const script = `
    import { checkGpioAccess } from ${JSON.stringify(join(import.meta.dirname, 'pi-hardware.ts'))};
    try { checkGpioAccess(${JSON.stringify(config)}); console.log(JSON.stringify({ code: 'NO_ERROR', message: '' })); }
    catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); }`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    uid: 65534,
    gid: 65534,
    encoding: 'utf8',
    env: { ...process.env, HOME: tmpdir() },
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { code: string; message: string };
}

function driverError(fn: () => unknown): DriverError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DriverError, `expected a DriverError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a DriverError');
}

describe('Pi GPIO hardware', () => {
  it('missing required pins are GPIO_CONFIG naming each config path, before any line is opened', () => {
    const fake = new FakeGpio();
    const error = driverError(() =>
      createPiGpio(gpioConfig({ sysfsRoot: pi5.root, plugPresent: RP1(19) }), createRecordingLogger(), { openLine: fake.open }),
    );
    assert.equal(error.code, 'GPIO_CONFIG');
    assert.match(error.message, /gpio\.relay, gpio\.emergencyStop/);
    assert.deepEqual(error.fields.missing, ['gpio.relay', 'gpio.emergencyStop']);
    assert.deepEqual(fake.journal, []);
  });

  it('opens the relay as an output already driving open, then the inputs on both edges', () => {
    const fake = new FakeGpio();
    const log = createRecordingLogger();
    createPiGpio(gpioConfig(FULL), log, { openLine: fake.open });
    assert.deepEqual(fake.journal, [
      'open 588 high none', // active-low relay: high is open
      'write 588 1',
      'open 589 in both',
      'open 590 in both',
      'open 591 in both',
    ]);
    assert.deepEqual(log.lines.at(-1)?.fields, { relay: 588, relayFeedback: 589, plugPresent: 590, emergencyStop: 591, debounceMs: 20 });
  });

  it('a failure opening an input releases the relay in the open state first, then the opened inputs', () => {
    const failure = new DriverError('GPIO_BUSY', 'line 591 in use');
    const fake = new FakeGpio({}, { 591: failure });
    const log = createRecordingLogger();
    assert.throws(
      () => createPiGpio(gpioConfig(FULL), log, { openLine: fake.open }),
      (error) => error === failure,
    );
    assert.deepEqual(fake.journal.slice(fake.journal.indexOf('fail 591')), [
      'fail 591',
      'write 588 1',
      'release 588',
      'release 589',
      'release 590',
    ]);
    assert.ok(log.lines.some((line) => line.event === 'gpio_open_failed' && line.fields.code === 'GPIO_BUSY'));
  });

  it('release opens a closed relay and releases it before the inputs, and is safe twice', () => {
    const fake = new FakeGpio();
    const gpio = createPiGpio(gpioConfig(FULL), createRecordingLogger(), { openLine: fake.open });
    gpio.relay.close();
    assert.equal(fake.line(588).level, 0);
    const start = fake.journal.length;
    gpio.release();
    gpio.release();
    assert.deepEqual(fake.journal.slice(start), ['write 588 1', 'release 588', 'release 589', 'release 590', 'release 591']);
  });

  it('the inputs apply active-low and the configured debounce; an e-stop press is reported on its first edge', () => {
    const fake = new FakeGpio({ 591: 1 });
    const timers = new ManualTimers();
    const gpio = createPiGpio(gpioConfig({ ...FULL, debounceMs: 50 }), createRecordingLogger(), { openLine: fake.open, timers });
    assert.equal(gpio.emergencyStop.read(), false);
    const pressed: boolean[] = [];
    gpio.emergencyStop.watch((active) => pressed.push(active));
    fake.line(591).drive(0);
    assert.deepEqual(pressed, [true], 'pressed: at once');
    fake.line(591).drive(1);
    timers.advance(49);
    assert.deepEqual(pressed, [true]);
    timers.advance(1);
    assert.deepEqual(pressed, [true, false], 'released: after the debounce');
    const plugged: boolean[] = [];
    gpio.plugPresent.watch((active) => plugged.push(active));
    fake.line(590).drive(1);
    timers.advance(49);
    assert.deepEqual(plugged, []);
    timers.advance(1);
    assert.deepEqual(plugged, [true], 'the plug input waits out the debounce both ways');
  });

  it('gpio.externalFault, the RCD auxiliary contact, is an input with its active level whose trip is reported on its first edge', () => {
    const fake = new FakeGpio({ 592: 1 });
    const timers = new ManualTimers();
    const log = createRecordingLogger();
    const gpio = createPiGpio(gpioConfig({ ...FULL, externalFault: RP1(21, true), debounceMs: 50 }), log, { openLine: fake.open, timers });
    assert.ok(fake.journal.includes('open 592 in both'));
    assert.equal(log.lines.at(-1)?.fields.externalFault, 592);
    assert.equal(gpio.externalFault?.read(), false, 'active-low: high is not tripped');
    const tripped: boolean[] = [];
    gpio.externalFault!.watch((active) => tripped.push(active));
    fake.line(592).drive(0);
    assert.deepEqual(tripped, [true], 'tripped: at once');
    fake.line(592).drive(1);
    timers.advance(50);
    assert.deepEqual(tripped, [true, false], 'reset: after the debounce');
    gpio.release();
    assert.equal(fake.line(592).released, true);
  });

  it('gpio.heartbeat opens as an output at its idle level right after the relay; toggles make edges and release holds it idle', () => {
    const fake = new FakeGpio();
    const log = createRecordingLogger();
    const gpio = createPiGpio(gpioConfig({ ...FULL, heartbeat: RP1(24, true) }), log, { openLine: fake.open });
    assert.deepEqual(fake.journal.slice(0, 3), ['open 588 high none', 'write 588 1', 'open 595 high none'], 'active-low: idle is high');
    assert.equal(log.lines.at(-1)?.fields.heartbeat, 595);
    gpio.heartbeat!.toggle();
    gpio.heartbeat!.toggle();
    gpio.heartbeat!.toggle();
    assert.equal(fake.line(595).level, 0);
    const start = fake.journal.length;
    gpio.release();
    assert.deepEqual(fake.journal.slice(start, start + 4), ['write 588 1', 'release 588', 'write 595 1', 'release 595']);
    assert.equal(createPiGpio(gpioConfig(FULL), createRecordingLogger(), { openLine: new FakeGpio().open }).heartbeat, undefined);
  });

  it('gpio.externalFault is absent unless configured, and may not share a line with another role', () => {
    const fake = new FakeGpio();
    assert.equal(createPiGpio(gpioConfig(FULL), createRecordingLogger(), { openLine: fake.open }).externalFault, undefined);
    const error = driverError(() => createPiGpio(gpioConfig({ ...FULL, externalFault: { sysfs: 591 } }), createRecordingLogger(), { openLine: new FakeGpio().open }));
    assert.match(error.message, /gpio\.emergencyStop and gpio\.externalFault are both sysfs GPIO 591/);
  });

  it('the feedback input is absent when gpio.relayFeedback is not set', () => {
    const fake = new FakeGpio();
    const { sysfsRoot, relay, plugPresent, emergencyStop } = FULL;
    const gpio = createPiGpio(gpioConfig({ sysfsRoot, relay, plugPresent, emergencyStop }), createRecordingLogger(), { openLine: fake.open });
    assert.equal(gpio.relayFeedback, undefined);
    assert.equal(fake.lines.has(589), false);
  });

  it('two roles on the same line are GPIO_CONFIG, before any line is opened', () => {
    const fake = new FakeGpio();
    const error = driverError(() =>
      createPiGpio(gpioConfig({ ...FULL, plugPresent: { sysfs: 588 } }), createRecordingLogger(), { openLine: fake.open }),
    );
    assert.equal(error.code, 'GPIO_CONFIG');
    assert.match(error.message, /gpio\.relay and gpio\.plugPresent are both sysfs GPIO 588/);
    assert.deepEqual(fake.journal, []);
  });

  it('a chip that is not on this board fails before any line is opened', () => {
    const fake = new FakeGpio();
    const error = driverError(() =>
      createPiGpio(gpioConfig({ ...FULL, relay: { chip: 'pinctrl-bcm2711', line: 17 } }), createRecordingLogger(), { openLine: fake.open }),
    );
    assert.equal(error.code, 'GPIO_CHIP_NOT_FOUND');
    assert.match(error.message, /gpio\.relay\.chip/);
    assert.deepEqual(fake.journal, []);
  });

  it('refuses a custom sysfsRoot with the onoff driver, which only uses /sys/class/gpio', () => {
    const error = driverError(() => createPiGpio(gpioConfig(FULL), createRecordingLogger()));
    assert.equal(error.code, 'GPIO_CONFIG');
    assert.match(error.message, /gpio\.sysfsRoot/);
  });
});

describe('GPIO access check', () => {
  it('returns the sysfs number of each configured pin when export is writable', () => {
    assert.deepEqual(checkGpioAccess(gpioConfig(FULL)), { relay: 588, relayFeedback: 589, plugPresent: 590, emergencyStop: 591 });
  });

  it('missing pins are GPIO_CONFIG', () => {
    assert.equal(driverError(() => checkGpioAccess(gpioConfig({ sysfsRoot: pi5.root }))).code, 'GPIO_CONFIG');
  });

  it('a missing sysfs root is GPIO_UNAVAILABLE even when every pin is a raw number', () => {
    const root = join(pi5.root, 'missing');
    const error = driverError(() =>
      checkGpioAccess(gpioConfig({ sysfsRoot: root, relay: { sysfs: 1 }, plugPresent: { sysfs: 2 }, emergencyStop: { sysfs: 3 } })),
    );
    assert.equal(error.code, 'GPIO_UNAVAILABLE');
    assert.ok(error.message.includes(join(root, 'export')));
  });

  it('an export file the user cannot write is GPIO_PERMISSION with the fix', () => {
    const tree = makeSysfsRoot(PI5_CHIPS);
    try {
      chmodSync(join(tree.root, 'export'), 0o444);
      const config = gpioConfig({ ...FULL, sysfsRoot: tree.root });
      // root writes any file: as root, the check runs in a child process as nobody, as the service user would
      const { code, message } = process.getuid?.() === 0 ? checkAsNobody(tree.root, config) : driverError(() => checkGpioAccess(config));
      assert.equal(code, 'GPIO_PERMISSION');
      assert.match(message, /SupplementaryGroups=gpio/);
    } finally {
      tree.cleanup();
    }
  });

  it('a root without an export file is GPIO_UNAVAILABLE', () => {
    const tree = makeSysfsRoot(PI5_CHIPS);
    try {
      rmSync(join(tree.root, 'export'));
      assert.equal(driverError(() => checkGpioAccess(gpioConfig({ ...FULL, sysfsRoot: tree.root }))).code, 'GPIO_UNAVAILABLE');
    } finally {
      tree.cleanup();
    }
  });
});
