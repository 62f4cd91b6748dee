// The OCPP configuration keys the agent implements (GetConfiguration / ChangeConfiguration), as a
// table: each key reads from and writes to one field of OcppSettings. Pure.
import type { Config } from '../config/schema.js';
import { parseMeasurands, type Measurand } from './meter-values.js';

export interface OcppSettings {
  heartbeatIntervalS: number;
  meterValueSampleIntervalS: number;
  clockAlignedDataIntervalS: number;
  sampledData: Measurand[];
  alignedData: Measurand[];
  stopTxnSampledData: Measurand[];
  authorizeRemoteTxRequests: boolean;
  stopTransactionOnInvalidId: boolean;
  transactionMessageAttempts: number;
  transactionMessageRetryIntervalS: number;
  webSocketPingIntervalS: number;
  connectionTimeOutS: number;
  localAuthList: string[];
}

export type ChangeStatus = 'Accepted' | 'Rejected' | 'RebootRequired' | 'NotSupported';

interface KeySpec {
  key: string;
  get: (s: OcppSettings) => string;
  /** Absent: read-only. Returns false when the value is not acceptable. */
  set?: (s: OcppSettings, value: string) => boolean;
}

const int = (field: keyof OcppSettings, min = 0) => (s: OcppSettings, value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min) return false;
  (s[field] as number) = Number(value);
  return true;
};
const bool = (field: keyof OcppSettings) => (s: OcppSettings, value: string) => {
  if (!/^(true|false)$/i.test(value)) return false;
  (s[field] as boolean) = value.toLowerCase() === 'true';
  return true;
};
const csl = (field: keyof OcppSettings) => (s: OcppSettings, value: string) => {
  const measurands = parseMeasurands(value);
  if (!measurands) return false;
  (s[field] as Measurand[]) = measurands;
  return true;
};

export const KEYS: readonly KeySpec[] = [
  { key: 'HeartbeatInterval', get: (s) => String(s.heartbeatIntervalS), set: int('heartbeatIntervalS', 1) },
  { key: 'MeterValueSampleInterval', get: (s) => String(s.meterValueSampleIntervalS), set: int('meterValueSampleIntervalS') },
  { key: 'ClockAlignedDataInterval', get: (s) => String(s.clockAlignedDataIntervalS), set: int('clockAlignedDataIntervalS') },
  { key: 'MeterValuesSampledData', get: (s) => s.sampledData.join(','), set: csl('sampledData') },
  { key: 'MeterValuesAlignedData', get: (s) => s.alignedData.join(','), set: csl('alignedData') },
  { key: 'StopTxnSampledData', get: (s) => s.stopTxnSampledData.join(','), set: csl('stopTxnSampledData') },
  { key: 'StopTxnAlignedData', get: () => '' },
  { key: 'AuthorizeRemoteTxRequests', get: (s) => String(s.authorizeRemoteTxRequests), set: bool('authorizeRemoteTxRequests') },
  { key: 'StopTransactionOnInvalidId', get: (s) => String(s.stopTransactionOnInvalidId), set: bool('stopTransactionOnInvalidId') },
  { key: 'TransactionMessageAttempts', get: (s) => String(s.transactionMessageAttempts), set: int('transactionMessageAttempts', 1) },
  { key: 'TransactionMessageRetryInterval', get: (s) => String(s.transactionMessageRetryIntervalS), set: int('transactionMessageRetryIntervalS') },
  { key: 'WebSocketPingInterval', get: (s) => String(s.webSocketPingIntervalS), set: int('webSocketPingIntervalS') },
  { key: 'ConnectionTimeOut', get: (s) => String(s.connectionTimeOutS) },
  { key: 'LocalAuthorizeOffline', get: () => 'true' },
  { key: 'LocalPreAuthorize', get: () => 'true' },
  { key: 'LocalAuthListEnabled', get: (s) => String(s.localAuthList.length > 0) },
  { key: 'NumberOfConnectors', get: () => '1' },
  { key: 'ResetRetries', get: () => '0' },
  { key: 'StopTransactionOnEVSideDisconnect', get: () => 'true' },
  { key: 'UnlockConnectorOnEVSideDisconnect', get: () => 'false' },
  { key: 'SupportedFeatureProfiles', get: () => 'Core,RemoteTrigger' },
  { key: 'GetConfigurationMaxKeys', get: () => '50' },
];

export function defaultSettings(config: Config): OcppSettings {
  const { ocpp } = config;
  return {
    heartbeatIntervalS: ocpp.heartbeatIntervalS,
    meterValueSampleIntervalS: ocpp.meterValueSampleIntervalS,
    clockAlignedDataIntervalS: ocpp.clockAlignedDataIntervalS,
    sampledData: ['Energy.Active.Import.Register', 'Power.Active.Import', 'Voltage', 'Current.Import'],
    alignedData: ['Energy.Active.Import.Register'],
    stopTxnSampledData: ['Energy.Active.Import.Register'],
    authorizeRemoteTxRequests: ocpp.authorizeRemoteTxRequests,
    stopTransactionOnInvalidId: true,
    transactionMessageAttempts: 3,
    transactionMessageRetryIntervalS: 60,
    webSocketPingIntervalS: 30,
    connectionTimeOutS: config.charging.authorizationTimeoutS,
    localAuthList: [...ocpp.localAuthList],
  };
}

export function getConfiguration(settings: OcppSettings, keys?: string[]) {
  const wanted = keys && keys.length > 0 ? keys : KEYS.map((k) => k.key);
  const configurationKey = [];
  const unknownKey = [];
  for (const key of wanted) {
    const spec = KEYS.find((k) => k.key === key);
    if (spec) configurationKey.push({ key, readonly: spec.set === undefined, value: spec.get(settings) });
    else unknownKey.push(key.slice(0, 50));
  }
  return { configurationKey, ...(unknownKey.length > 0 ? { unknownKey } : {}) };
}

/** Applies one change to `settings` (in place). */
export function changeConfiguration(settings: OcppSettings, key: string, value: string): ChangeStatus {
  const spec = KEYS.find((k) => k.key === key);
  if (!spec) return 'NotSupported';
  if (!spec.set) return 'Rejected';
  return spec.set(settings, value) ? 'Accepted' : 'Rejected';
}
