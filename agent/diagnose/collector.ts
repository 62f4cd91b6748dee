// What every collector of analyze.ts shares: the occurrence of a problem it notes, the interface it
// implements, and the readers for the loosely typed fields of journal lines.
import type { ProblemKind } from './catalogue.js';
import type { DiagnoseEntry } from './journal-entry.js';

export interface Occurrence {
  kind: ProblemKind;
  timeMs: number;
  unit: string;
  detail: string;
}

export interface Collector {
  onEntry(entry: DiagnoseEntry): void;
  finish(endMs: number): void;
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
export const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

export function describeFields(fields: Record<string, unknown>, skip: string[]): string {
  const rest = Object.entries(fields).filter(([key]) => !skip.includes(key));
  return rest.length === 0 ? '' : ' ' + rest.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ');
}
