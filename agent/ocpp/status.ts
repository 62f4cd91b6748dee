// The connector status an OCPP 1.6 CSMS sees, from what the charging core knows. Pure.
import type { ActiveFault, ChargeState, FaultCode } from '../charging/types.js';

export type ChargePointStatus = 'Available' | 'Preparing' | 'Charging' | 'SuspendedEVSE' | 'SuspendedEV' | 'Finishing' | 'Unavailable' | 'Faulted';

export type ChargePointErrorCode = 'NoError' | 'OtherError' | 'PowerMeterFailure' | 'PowerSwitchFailure' | 'GroundFailure' | 'InternalError';

export interface ConnectorStatus {
  status: ChargePointStatus;
  errorCode: ChargePointErrorCode;
  /** The agent's own fault code, for the operator (vendorErrorCode). */
  vendorErrorCode?: string;
  info?: string;
}

export interface StatusInput {
  state: ChargeState;
  faults: readonly ActiveFault[];
  plugged: boolean;
  /** Active power of a reading taken while charging: a vehicle that draws none has suspended. */
  powerW?: number;
  /** How long the contactor has been closed when that reading was taken (the vehicle needs a moment to draw). */
  chargingForMs?: number;
  /** A transaction ended while the vehicle is still plugged in (Finishing until it unplugs). */
  endedWhilePlugged: boolean;
}

/** A reading this soon after the contactor closed does not say the vehicle suspended. */
export const SUSPEND_SETTLE_MS = 3000;

/** Below this the vehicle is taken to draw nothing (meter noise, the contactor coil of some EVSEs). */
export const SUSPENDED_BELOW_W = 50;

/** The OCPP error code of each fault; the first fault of the list is reported. */
export const FAULT_ERROR_CODE: Record<FaultCode, ChargePointErrorCode> = {
  relay_welded: 'PowerSwitchFailure',
  relay_failure: 'PowerSwitchFailure',
  meter_stale: 'PowerMeterFailure',
  emergency_stop: 'OtherError',
  hardware_fault: 'OtherError',
};

const INFO_MAX = 50;

export function connectorStatus(input: StatusInput): ConnectorStatus {
  const fault = input.faults[0];
  if (input.state === 'Faulted' && fault) {
    return {
      status: 'Faulted',
      errorCode: FAULT_ERROR_CODE[fault.code],
      vendorErrorCode: fault.code,
      info: fault.detail?.slice(0, INFO_MAX),
    };
  }
  return { status: okStatus(input), errorCode: 'NoError' };
}

function okStatus(input: StatusInput): ChargePointStatus {
  switch (input.state) {
    case 'Charging':
      return suspended(input) ? 'SuspendedEV' : 'Charging';
    case 'Authorized':
      return 'Preparing';
    case 'Finishing':
      return 'Finishing';
    case 'Unavailable':
      return 'Unavailable';
    case 'Faulted':
      return 'Faulted';
    case 'Available':
      if (!input.plugged) return 'Available';
      return input.endedWhilePlugged ? 'Finishing' : 'Preparing';
  }
}

function suspended({ powerW, chargingForMs }: StatusInput): boolean {
  return powerW !== undefined && chargingForMs !== undefined && chargingForMs >= SUSPEND_SETTLE_MS && powerW < SUSPENDED_BELOW_W;
}

/** The charge point as a whole (connector 0): only Available, Unavailable or Faulted. */
export function chargePointStatus(connector: ConnectorStatus): ConnectorStatus {
  if (connector.status === 'Faulted' || connector.status === 'Unavailable') return connector;
  return { status: 'Available', errorCode: 'NoError' };
}

export function sameStatus(a: ConnectorStatus | undefined, b: ConnectorStatus): boolean {
  return a !== undefined && a.status === b.status && a.errorCode === b.errorCode && a.vendorErrorCode === b.vendorErrorCode;
}
