// How an sd_notify message leaves the process. Node's dgram has no AF_UNIX datagram sockets, so we
// run systemd's own `systemd-notify` rather than a native addon: it is on every systemd machine,
// needs no compiler on the Pi and no allowScripts entry, and since systemd 246 it is race-free for
// our use. The race (systemd PR #5239, systemd-notify(1)): PID 1 attributes a message to a unit by
// the sender's cgroup, which it can only look up while the sender is alive; a short-lived helper
// that exits first gets its message dropped. systemd-notify closes that by default: after sending
// it waits on sd_notify_barrier() until PID 1 has processed the message (we never pass --no-block).
// It first tries to send with our PID as credentials (needs CAP_SYS_ADMIN, which the unit does not
// have) and then falls back to its own PID, which is why the units say NotifyAccess=all.
import { execFile } from 'node:child_process';

/** Sends one notify message (its lines, e.g. ["READY=1", "STATUS=Available"]) to socketPath. */
export type NotifySender = (socketPath: string, lines: string[], options?: { mainPid?: number }) => Promise<void>;

export type NotifyErrorCode = 'SD_NOTIFY_MISSING' | 'SD_NOTIFY_FAILED';

export class NotifyError extends Error {
  constructor(
    readonly code: NotifyErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'NotifyError';
  }
}

export interface SystemdNotifySenderOptions {
  /** The systemd-notify binary; default found on PATH. */
  command?: string;
  /** A send that takes longer is abandoned (the barrier itself gives up after 5 s). Default 10 s. */
  timeoutMs?: number;
  /** PATH for finding the binary; default the process's PATH or the usual system dirs. */
  path?: string;
}

export function createSystemdNotifySender(options: SystemdNotifySenderOptions = {}): NotifySender {
  const command = options.command ?? 'systemd-notify';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const path = options.path ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
  return (socketPath, lines, sendOptions = {}) =>
    new Promise<void>((resolve, reject) => {
      // MAINPID= (via --pid) names the process systemd should supervise: us, even if a wrapper
      // script ever ends up between systemd and node.
      const args = sendOptions.mainPid !== undefined ? [`--pid=${sendOptions.mainPid}`, ...lines] : lines;
      const env = { NOTIFY_SOCKET: socketPath, PATH: path, LC_ALL: 'C' };
      execFile(command, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
        if (!error) return resolve();
        const errno = (error as NodeJS.ErrnoException).code;
        if (errno === 'ENOENT') {
          return reject(new NotifyError('SD_NOTIFY_MISSING', `${command} not found on PATH (${path}); install systemd or run without Type=notify`));
        }
        const detail = stderr.trim().split('\n').pop() || error.message;
        reject(new NotifyError('SD_NOTIFY_FAILED', `${command} ${lines.join(' ')} to ${socketPath} failed: ${detail}`));
      });
    });
}
