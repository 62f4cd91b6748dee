// Runs `promtool check metrics` (Debian package prometheus) on an exposition text: the same lint
// Prometheus maintainers apply. A test aid: nothing in the agent runs it.
import { spawn } from 'node:child_process';

export interface PromtoolResult {
  /** False when promtool is not installed. */
  available: boolean;
  exitCode: number | null;
  /** Lint problems and errors as promtool printed them, one per line. */
  output: string;
}

export function promtoolCheckMetrics(text: string, promtool = process.env.PROMTOOL ?? 'promtool'): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') resolve({ available: false, exitCode: null, output: '' });
      else reject(error);
    });
    child.on('close', (exitCode) => resolve({ available: true, exitCode, output: output.trim() }));
    child.stdin.on('error', () => {}); // promtool missing: EPIPE on stdin, reported through 'error' above
    child.stdin.end(text);
  });
}
