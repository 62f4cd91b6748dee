// The relay pin read straight from the config file, without the YAML library or the schema: this
// runs in `charger-agent relay-safe` after the agent died, when node_modules may be what broke.
// It reads only the top-level `gpio:` section, in the block or flow style the example config uses
// (`relay: { chip: pinctrl-rp1, line: 17, activeLow: true }`), or a JSON config; anything it does
// not understand there (anchors, aliases, tags, lists) is an error rather than a guess.

export interface RelayPin {
  sysfsRoot: string;
  chip?: string;
  line?: number;
  sysfs?: number;
  activeLow: boolean;
}

export class RelayPinError extends Error {
  readonly code = 'RELAY_PIN_UNREADABLE';
  constructor(message: string) {
    super(`RELAY_PIN_UNREADABLE: ${message}`);
  }
}

type Value = string | number | boolean | null | { [key: string]: Value };

const DEFAULT_SYSFS_ROOT = '/sys/class/gpio';

/** The text of a line without its comment (a # at the start or after a blank, outside quotes). */
function withoutComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

function scalar(text: string): Value {
  const t = text.trim();
  if (/^[&*!|>]/.test(t) || t.startsWith('- ') || t.startsWith('[')) throw new RelayPinError(`unsupported YAML in the gpio section: "${t}"`);
  if (t.startsWith('"')) return JSON.parse(t) as string;
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new RelayPinError(`unterminated quote: ${t}`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t === '' || t === '~' || /^null$/i.test(t)) return null;
  if (/^(true|false)$/i.test(t)) return t.toLowerCase() === 'true';
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^0x[0-9a-f]+$/i.test(t)) return Number.parseInt(t.slice(2), 16);
  if (/^0o[0-7]+$/i.test(t)) return Number.parseInt(t.slice(2), 8);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)(e[-+]?\d+)?$/i.test(t)) return Number(t);
  return t;
}

/** Splits "a: 1, b: 'x, y'" at the commas outside quotes and braces. */
function splitFlow(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim()).filter(Boolean);
}

function keyValue(text: string): [string, string] {
  const match = /^("[^"]*"|'[^']*'|[^:]+?)\s*:(?:\s+(.*))?$/.exec(text.trim());
  if (!match) throw new RelayPinError(`expected "key: value", got "${text.trim()}"`);
  return [String(scalar(match[1]!)), match[2] ?? ''];
}

function flowOrScalar(text: string): Value {
  const t = text.trim();
  if (!t.startsWith('{')) return scalar(t);
  if (!t.endsWith('}')) throw new RelayPinError(`a flow mapping must close on its line: ${t}`);
  const map: Record<string, Value> = {};
  for (const part of splitFlow(t.slice(1, -1))) {
    const [key, value] = keyValue(part);
    map[key] = flowOrScalar(value);
  }
  return map;
}

interface Line {
  indent: number;
  text: string;
}

/** A block mapping from lines[from], all at the first line's indent; returns it and where it ended. */
function blockMapping(lines: Line[], from: number): [Record<string, Value>, number] {
  const map: Record<string, Value> = {};
  const indent = lines[from]!.indent;
  let i = from;
  while (i < lines.length && lines[i]!.indent >= indent) {
    const line = lines[i]!;
    if (line.indent > indent) throw new RelayPinError(`unexpected indentation: "${line.text}"`);
    const [key, rest] = keyValue(line.text);
    i++;
    if (rest.trim() === '' && i < lines.length && lines[i]!.indent > indent) {
      const [child, end] = blockMapping(lines, i);
      map[key] = child;
      i = end;
    } else {
      map[key] = flowOrScalar(rest);
    }
  }
  return [map, i];
}

/** The `gpio` section of a YAML (or JSON) config, as plain values; undefined when there is none. */
export function readGpioSection(text: string): Record<string, Value> | undefined {
  if (text.trimStart().startsWith('{')) {
    const gpio = (JSON.parse(text) as { gpio?: Record<string, Value> }).gpio;
    return gpio ?? undefined;
  }
  const lines = text
    .split(/\r?\n/)
    .map(withoutComment)
    .filter((line) => line.trim() !== '' && line.trim() !== '---')
    .map((line) => ({ indent: line.length - line.trimStart().length, text: line.trim() }));
  const at = lines.findIndex((line) => line.indent === 0 && /^gpio\s*:/.test(line.text));
  if (at === -1) return undefined;
  const [, rest] = keyValue(lines[at]!.text);
  if (rest.trim() !== '') {
    const value = flowOrScalar(rest);
    if (value === null) return undefined;
    if (typeof value !== 'object') throw new RelayPinError(`gpio must be a mapping, not "${rest.trim()}"`);
    return value;
  }
  if (at + 1 >= lines.length || lines[at + 1]!.indent === 0) return undefined;
  return blockMapping(lines, at + 1)[0];
}

function integer(value: Value | undefined, path: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new RelayPinError(`${path} must be a whole number, not ${JSON.stringify(value)}`);
  return value;
}

/** gpio.relay and gpio.sysfsRoot from the config text; undefined when no relay line is configured. */
export function relayPinFromConfig(text: string): RelayPin | undefined {
  const gpio = readGpioSection(text);
  const relay = gpio?.relay;
  if (relay === undefined || relay === null) return undefined;
  if (typeof relay !== 'object') throw new RelayPinError('gpio.relay must be { chip, line } or { sysfs }');
  const sysfsRoot = gpio!.sysfsRoot ?? DEFAULT_SYSFS_ROOT;
  if (typeof sysfsRoot !== 'string') throw new RelayPinError('gpio.sysfsRoot must be a path');
  const pin: RelayPin = {
    sysfsRoot,
    chip: typeof relay.chip === 'string' ? relay.chip : undefined,
    line: integer(relay.line, 'gpio.relay.line'),
    sysfs: integer(relay.sysfs, 'gpio.relay.sysfs'),
    activeLow: relay.activeLow === true,
  };
  if (relay.activeLow !== undefined && typeof relay.activeLow !== 'boolean') throw new RelayPinError('gpio.relay.activeLow must be true or false');
  if (pin.sysfs === undefined && (pin.chip === undefined || pin.line === undefined)) throw new RelayPinError('gpio.relay needs either chip and line, or sysfs');
  return pin;
}
