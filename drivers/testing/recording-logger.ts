// Test aid only: a DriverLogger that keeps its lines, so a test can assert what a driver logged.
import type { DriverLogFields, DriverLogger } from '../logger.js';

export interface RecordedLine {
  priority: 'err' | 'info';
  event: string;
  fields: DriverLogFields;
}

export function createRecordingLogger(): DriverLogger & { lines: RecordedLine[] } {
  const lines: RecordedLine[] = [];
  const record = (priority: RecordedLine['priority']) => (event: string, fields: DriverLogFields = {}) => void lines.push({ priority, event, fields });
  return { lines, err: record('err'), info: record('info') };
}
