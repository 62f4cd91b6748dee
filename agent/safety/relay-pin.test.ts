import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { readGpioSection, relayPinFromConfig } from './relay-pin.js';

const EXAMPLE = readFileSync(new URL('../../systemd/config.example.yaml', import.meta.url), 'utf8');

/** The example with its commented-out settings switched on, as an operator edits it. */
function uncommented(yaml: string): string {
  return yaml.replace(/^#(?=[A-Za-z]\w*:(\s|$)| {2,}[A-Za-z]\w*:(\s|$))/gm, '');
}

const CONFIGS: Record<string, string> = {
  'the example, switched on': uncommented(EXAMPLE),
  'block style with comments and quotes': `cpId: "CP-1"   # a comment
health:
  port: 5001
gpio:
  # the coil
  sysfsRoot: '/sys/class/gpio'
  relay:
    chip: "pinctrl-rp1"     # Pi 5
    line: 17
    activeLow: true
  plugPresent: { chip: pinctrl-rp1, line: 22, activeLow: false }
  debounceMs: 20
kafka:
  brokers: [a:9092, b:9092]
`,
  'a raw sysfs number, flow style throughout': 'gpio: { relay: { sysfs: 588 }, emergencyStop: { sysfs: 590, activeLow: true } }\n',
  'JSON': JSON.stringify({ gpio: { relay: { chip: 'pinctrl-bcm2711', line: 4, activeLow: false } } }),
  'no gpio section': 'cpId: CP-2\nmeter:\n  driver: sim\n',
};

describe('the relay pin read without the YAML library', () => {
  for (const [name, text] of Object.entries(CONFIGS)) {
    it(`reads the gpio section as the YAML library does: ${name}`, () => {
      assert.deepEqual(readGpioSection(text), (parse(text) as { gpio?: unknown } | null)?.gpio ?? undefined);
    });
  }

  it('gives the relay pin with its defaults', () => {
    assert.deepEqual(relayPinFromConfig(CONFIGS['a raw sysfs number, flow style throughout']!), {
      sysfsRoot: '/sys/class/gpio',
      chip: undefined,
      line: undefined,
      sysfs: 588,
      activeLow: false,
    });
    assert.equal(relayPinFromConfig(CONFIGS['no gpio section']!), undefined);
  });

  it('refuses what it cannot read for sure instead of guessing a line', () => {
    assert.throws(() => relayPinFromConfig('gpio:\n  relay: &coil { sysfs: 5 }\n'), /RELAY_PIN_UNREADABLE/);
    assert.throws(() => relayPinFromConfig('gpio:\n  relay: { chip: pinctrl-rp1 }\n'), /needs either chip and line, or sysfs/);
    assert.throws(() => relayPinFromConfig('gpio:\n  relay: { sysfs: -3 }\n'), /whole number/);
    assert.throws(() => relayPinFromConfig('gpio:\n  relay: { sysfs: 5, activeLow: maybe }\n'), /activeLow must be true or false/);
  });
});
