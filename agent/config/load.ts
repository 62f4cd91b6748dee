// Configuration from defaults < file (YAML, or JSON which is YAML too) < env CHARGER_* < flags.
// Every problem is collected and reported at once with its path and source: the file, the values,
// the schema and the checks across settings (semantics.ts) all run; the caller exits 78.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { RUN_FLAGS, envName, type FlagSpec } from './flags.js';
import { configSchema, type Config } from './schema.js';
import { semanticProblems } from './semantics.js';

export const EX_CONFIG = 78;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** Parsed flag values by flag name (without --). */
  flags?: Record<string, string | boolean | undefined>;
  env?: NodeJS.ProcessEnv;
  /** A config file; CHARGER_CONFIG in env when absent. */
  file?: string;
  /** The flag table that maps flags and env to config paths (default RUN_FLAGS). */
  flagSpecs?: FlagSpec[];
}

type Tree = Record<string, unknown>;

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const specs = sources.flagSpecs ?? RUN_FLAGS;
  const problems: string[] = [];
  const origin = new Map<string, string>();
  const file = sources.file ?? env.CHARGER_CONFIG;
  const tree: Tree = file ? readConfigFile(file, problems) : {};
  if (file) markOrigins(tree, [], `${file}`, origin);

  for (const spec of specs) {
    const fromEnv = env[envName(spec.flag)];
    if (fromEnv !== undefined) applyValue(tree, spec, fromEnv, envName(spec.flag), problems, origin);
    const fromFlag = sources.flags?.[spec.flag];
    if (fromFlag !== undefined) applyValue(tree, spec, fromFlag, `--${spec.flag}`, problems, origin);
  }

  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, origin)));
  problems.push(...semanticProblems(tree).map(({ path, message }) => `${path}: ${message}${fromSource(path, origin)}`));
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data!;
}

function readConfigFile(file: string, problems: string[]): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`${file}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    return {};
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  for (const error of doc.errors) problems.push(`${file}: ${error.message.split('\n')[0]}`);
  if (doc.errors.length > 0) return {};
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${file}: expected a mapping of settings at the top level`);
    return {};
  }
  return value as Tree;
}

function applyValue(tree: Tree, spec: FlagSpec, raw: string | boolean, source: string, problems: string[], origin: Map<string, string>): void {
  const value = convert(spec, raw);
  if (value === undefined) {
    problems.push(`${source}: expected a ${spec.kind}, got ${JSON.stringify(raw)}`);
    return;
  }
  let node = tree;
  for (const key of spec.path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Tree;
  }
  node[spec.path.at(-1)!] = value;
  origin.set(spec.path.join('.'), source);
}

function convert(spec: FlagSpec, raw: string | boolean): unknown {
  if (spec.kind === 'boolean') return typeof raw === 'boolean' ? raw : raw === 'true' ? true : raw === 'false' ? false : undefined;
  if (typeof raw !== 'string') return undefined;
  if (spec.kind === 'number') return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : undefined;
  return raw;
}

function markOrigins(node: unknown, path: string[], source: string, origin: Map<string, string>): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    origin.set(path.join('.'), source);
    return;
  }
  for (const [key, value] of Object.entries(node)) markOrigins(value, [...path, key], source, origin);
}

function describeIssue(issue: z.core.$ZodIssue, origin: Map<string, string>): string {
  const path = issue.path.map(String).join('.');
  const where = path || '(top level)';
  const from = fromSource(path, origin);
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} — check the spelling${from}`;
  }
  return `${where}: ${issue.message}${from}`;
}

/** " (from <file|env|flag>)" for a setting, the list it is an entry of, or the section whose keys it holds. */
function fromSource(path: string, origin: Map<string, string>): string {
  let source = origin.get(path) ?? origin.get(path.replace(/\.\d+$/, ''));
  if (source === undefined && path !== '') {
    for (const [key, value] of origin) if (key.startsWith(`${path}.`)) source ??= value;
  }
  return source ? ` (from ${source})` : '';
}
