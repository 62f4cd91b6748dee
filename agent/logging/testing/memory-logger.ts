// Test aid only: a Logger that keeps its lines in memory, so a test can assert what was logged.
import { loggerFrom, type LogFields, type Logger, type Priority } from '../logger.js';

export interface MemoryLine {
  priority: Priority;
  event: string;
  fields: LogFields;
}

export function createMemoryLogger(): Logger & { lines: MemoryLine[] } {
  const lines: MemoryLine[] = [];
  const make = (base: LogFields): Logger =>
    loggerFrom(
      (priority, event, fields = {}) => void lines.push({ priority, event, fields: { ...base, ...fields } }),
      (fields) => make({ ...base, ...fields }),
    );
  return Object.assign(make({}), { lines });
}
