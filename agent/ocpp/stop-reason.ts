// The StopTransaction reason a CSMS sees, from the session's end reason. Pure.
import type { FaultCode, SessionEndReason } from '../charging/types.js';

export type StopReason =
  | 'EmergencyStop'
  | 'EVDisconnected'
  | 'HardReset'
  | 'Local'
  | 'Other'
  | 'PowerLoss'
  | 'Reboot'
  | 'Remote'
  | 'SoftReset'
  | 'DeAuthorized';

export interface StopContext {
  /** Set when this interface itself ended the session for a reason the core does not know. */
  override?: 'SoftReset' | 'HardReset' | 'DeAuthorized';
  /** The fault that ended the session (AVERIADO), when it ended on a fault. */
  fault?: FaultCode;
  /** For an interrupted session: the machine booted since the session was last seen alive. */
  machineRebooted?: boolean;
}

export function stopReason(reason: SessionEndReason, context: StopContext = {}): StopReason {
  if (context.override) return context.override;
  switch (reason) {
    case 'unplugged':
      return 'EVDisconnected';
    case 'stopped_by_central':
      return 'Remote';
    case 'fault':
      return context.fault === 'emergency_stop' ? 'EmergencyStop' : 'Other';
    case 'shutdown':
      return 'Reboot';
    case 'interrupted':
      // kill -9 or a crash restarted by systemd is a local reboot; a cold boot since then is a power loss
      return context.machineRebooted ? 'PowerLoss' : 'Reboot';
    case 'authorization_expired':
      return 'Other';
  }
}
