// The checks a schema cannot make: addresses that must parse as IPs or CIDRs, two functions wired to
// one GPIO line, and files the daemon will read at start. They read the merged settings as given
// (before the schema), so a bad port elsewhere never hides them: every problem is reported in one run.
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';

type Tree = Record<string, unknown>;

/** One problem: the setting's path and what is wrong with it (the loader adds where it came from). */
export interface SemanticProblem {
  path: string;
  message: string;
}

const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);
const at = (tree: Tree, path: string): unknown => path.split('.').reduce<unknown>((node, key) => (isTree(node) ? node[key] : undefined), tree);

export function semanticProblems(tree: Tree): SemanticProblem[] {
  return [...allowedPeerProblems(tree), ...pinConflicts(tree), ...fileProblems(tree)];
}

/** Peers for state-changing commands must be addresses or CIDRs: a typo must not open the port. */
function allowedPeerProblems(tree: Tree): SemanticProblem[] {
  const peers = at(tree, 'health.allowedPeers');
  if (!Array.isArray(peers)) return [];
  return peers.flatMap((entry, i) => {
    if (typeof entry !== 'string') return []; // the schema reports the type
    const [address, prefix] = entry.split('/');
    const family = isIP(address ?? '');
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= maxPrefix);
    return family !== 0 && prefixOk ? [] : [{ path: `health.allowedPeers.${i}`, message: `"${entry}" is not an IP address or CIDR` }];
  });
}

/**
 * Every pin of the gpio section, whatever its function (new pins are covered without a change here):
 * two on one line would drive an output from an input's line or read one contact as two. A pin given
 * by chip + line and another by sysfs number can only be compared on the device (the chip's base),
 * which the GPIO driver does at start.
 */
function pinConflicts(tree: Tree): SemanticProblem[] {
  const gpio = at(tree, 'gpio');
  if (!isTree(gpio)) return [];
  const owners = new Map<string, string>();
  const problems: SemanticProblem[] = [];
  for (const [name, pin] of Object.entries(gpio)) {
    const line = lineOf(pin);
    if (!line) continue;
    const owner = owners.get(line.key);
    if (owner) problems.push({ path: `gpio.${name}`, message: `is ${line.text}, as gpio.${owner} is: give each function its own line` });
    else owners.set(line.key, name);
  }
  return problems;
}

function lineOf(pin: unknown): { key: string; text: string } | undefined {
  if (!isTree(pin)) return undefined;
  if (typeof pin.sysfs === 'number') return { key: `sysfs:${pin.sysfs}`, text: `sysfs GPIO ${pin.sysfs}` };
  if (typeof pin.chip === 'string' && typeof pin.line === 'number') return { key: `chip:${pin.chip}:${pin.line}`, text: `line ${pin.line} of ${pin.chip}` };
  return undefined;
}

/** Files read at start, where the setting that names them is in use. */
function fileProblems(tree: Tree): SemanticProblem[] {
  const problems: SemanticProblem[] = [];
  const mechanism = at(tree, 'kafka.sasl.mechanism');
  const saslOn = typeof mechanism === 'string' && mechanism !== 'none';
  if (at(tree, 'kafka.tls.enabled') === true) {
    for (const key of ['caFile', 'certFile', 'keyFile']) problems.push(...unreadable(tree, `kafka.tls.${key}`));
  }
  if (saslOn) {
    for (const key of ['username', 'passwordFile']) {
      if (at(tree, `kafka.sasl.${key}`) === undefined) problems.push({ path: `kafka.sasl.${key}`, message: `is required with kafka.sasl.mechanism ${mechanism}` });
    }
    problems.push(...unreadable(tree, 'kafka.sasl.passwordFile'));
  }
  const mqttUrl = at(tree, 'mqtt.url');
  if (typeof mqttUrl === 'string' && mqttUrl !== '') problems.push(...unreadable(tree, 'mqtt.passwordFile'));
  const ocppUrl = at(tree, 'ocpp.url');
  if (typeof ocppUrl === 'string' && ocppUrl !== '') problems.push(...unreadable(tree, 'ocpp.passwordFile'), ...unreadable(tree, 'ocpp.caFile'));
  return problems;
}

function unreadable(tree: Tree, path: string): SemanticProblem[] {
  const file = at(tree, path);
  if (typeof file !== 'string' || file === '') return [];
  try {
    if (!statSync(file).isFile()) return [{ path, message: `${file} is not a file` }];
    accessSync(file, constants.R_OK);
    return [];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    const hint = code === 'EACCES' ? ' (the service user cannot read it)' : '';
    return [{ path, message: `cannot read ${file} (${code})${hint}` }];
  }
}
