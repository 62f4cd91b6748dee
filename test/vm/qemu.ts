// The host side of the VM suite: provisioning (scripts/vm/provision.sh), the staged payload
// (scripts/vm/stage.sh), one boot of the guest (scripts/vm/boot.sh, which execs qemu) under a hard
// timeout, and a power cut: SIGKILL to qemu once the guest says it is in the middle of its sessions.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = resolve(import.meta.dirname, '../..');
const SCRIPTS = join(REPO, 'scripts/vm');

export interface Provisioned {
  env: Record<string, string>;
}

function execText(file: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Kernel, module, initramfs from Debian (cached outside git); the reason when it cannot. */
export async function provision(): Promise<Provisioned | { reason: string }> {
  const result = await execText('bash', [join(SCRIPTS, 'provision.sh')], 30 * 60_000);
  if (result.code !== 0) return { reason: `scripts/vm/provision.sh failed (${result.code}): ${result.stderr.trim().split('\n').slice(-5).join(' | ')}` };
  const env: Record<string, string> = {};
  for (const line of result.stdout.trim().split('\n')) {
    const match = /^(VM_\w+)=(.*)$/.exec(line);
    // printf %q quoting: only backslash escapes of ~ and + appear in the key
    if (match) env[match[1]!] = match[2]!.replace(/\\(.)/g, '$1');
  }
  if (!env.VM_DIR || !env.VM_INITRD) return { reason: `scripts/vm/provision.sh printed no VM_DIR/VM_INITRD: ${result.stdout}` };
  return { env };
}

/** node, npm and the built, pruned tree into <dir>/payload. */
export async function stage(dir: string): Promise<void> {
  const result = await execText('bash', [join(SCRIPTS, 'stage.sh'), dir], 10 * 60_000);
  if (result.code !== 0) throw new Error(`scripts/vm/stage.sh failed (${result.code}): ${result.stderr}`);
}

export interface BootOptions {
  provisioned: Provisioned;
  runDir: string;
  payload: string;
  instructions: Record<string, unknown>;
  disk?: string;
  timeoutMs: number;
  /** Power cut: resolves when the guest is in the middle of its work; then qemu is SIGKILLed. */
  cutWhen?: (runDir: string) => boolean;
  /** Random delay after cutWhen holds, so the cut lands anywhere in a session. */
  cutJitterMs?: number;
}

export interface BootOutcome {
  wallMs: number;
  /** qemu's exit: code 0 after the guest powered off; signal SIGKILL after a cut or the timeout. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cut: boolean;
  console: string;
}

export async function boot(options: BootOptions): Promise<BootOutcome> {
  mkdirSync(options.runDir, { recursive: true });
  writeFileSync(join(options.runDir, 'instructions.json'), JSON.stringify(options.instructions));
  const args = [join(SCRIPTS, 'boot.sh'), options.runDir, '--payload', options.payload];
  if (options.disk) args.push('--disk', options.disk);
  const started = Date.now();
  const qemu = spawn('bash', args, { env: { ...process.env, ...options.provisioned.env }, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => qemu.on('exit', (code, signal) => done({ code, signal })));
  let timedOut = false;
  let cut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGKILL');
  }, options.timeoutMs);
  if (options.cutWhen) {
    const cutWhen = options.cutWhen;
    void (async () => {
      while (qemu.exitCode === null && qemu.signalCode === null && !timedOut) {
        if (cutWhen(options.runDir)) {
          await sleep(Math.random() * (options.cutJitterMs ?? 0));
          cut = true;
          qemu.kill('SIGKILL');
          return;
        }
        await sleep(50);
      }
    })();
  }
  const { code, signal } = await exited;
  clearTimeout(timer);
  const consolePath = join(options.runDir, 'console.log');
  return { wallMs: Date.now() - started, code, signal, timedOut, cut, console: existsSync(consolePath) ? readFileSync(consolePath, 'utf8') : '' };
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
