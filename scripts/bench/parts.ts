// The results each benchmark process writes to .bench/parts/<name>.json, as the runner reads them.

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface HealthRuns {
  checksPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  clientCpu: number;
  serverCpu: number;
  errors: number;
  runs: number[];
}

export interface HealthPart {
  connections: number;
  runs: number;
  durationS: number;
  agentStateAfter: string;
  agent: { connect: HealthRuns; keep: HealthRuns };
  ceiling: { connect: HealthRuns; keep: HealthRuns };
  ratio: { connect: number; keep: number; connectRuns: number[]; keepRuns: number[] };
  /** The agent's protocol server alone (no controller) against the ceiling. */
  protocolRatio: { connect: number; keep: number };
  measurements: unknown[];
}

export interface FaultKind extends Percentiles {
  unit: 'ms';
  loopBusyAfterOpen: Percentiles;
}

export interface FaultPart {
  trials: number;
  limits: { feedbackTimeoutMs: number; defaultFeedbackTimeoutMs: number; meterStaleMs: number; meterPollMs: number; gpioDebounceMs: number };
  emergencyStop: FaultKind;
  emergencyStopGpio: FaultKind;
  feedbackMismatch: FaultKind;
  meterStale: FaultKind;
  elapsedS: number;
}

export interface MeterModelFigures {
  model: string;
  registers: number;
  requestsPerReading: number;
  attemptsPerReading: number;
  requestBytesPerReading: number;
  answerBytesPerReading: number;
  wireBytesPerReading: number;
  plannedReads: Array<{ address: string; count: number }>;
  plannedWireBytes: number;
  computedCycleMs: number;
  inMemoryCycleMs: number;
}

export interface MeterPart {
  baud: number;
  memory: MeterModelFigures[];
  pty: {
    model: string;
    baud: number;
    readings: number;
    requestsPerReading: number;
    wireBytesPerReading: number;
    computed: { characterTimeMs: number; silenceMs: number; cycleMs: number };
    measuredPty: { p50Ms: number; p99Ms: number };
    estimatedRealLineMs: number;
    lineErrors: number;
  };
}

export interface FleetStep {
  agents: number;
  windowS: number;
  expectedMessages: number;
  receivedMessages: number;
  sampleToAppendMs: Percentiles;
  machineBusy: number;
  agentCpuMean: number;
  agentRssMeanMb: number;
  startS: number;
  verdict: 'ok' | 'p99_over_limit' | 'saturated' | 'failed';
  error?: string;
}

export interface FleetPart {
  p99LimitMs: number;
  partitions: number;
  timestampType: string;
  largestUnderLimit: number;
  /** The last step was still under the limit and not saturated: the real limit is higher. */
  limitNotReached: boolean;
  /** Set when the next step was skipped because it would not fit in memory. */
  memoryLimit?: { nextStep: number; needMb: number; availableMb: number };
  steps: FleetStep[];
}

export interface AckPart {
  seconds: number;
  state: string;
  sampleToAckMs: Percentiles;
  outboxDepthAtEnd: number;
}

/** The compiled daemon with every fsync/fdatasync slowed by `stallMs` (0: no shim), Kafka on. */
export interface SlowStorageRun {
  stallMs: number;
  /** spawn → agent_ready */
  readyMs: number;
  /** The store's open in its worker thread, as the agent logged it (after READY). */
  storeOpenMs: number;
  /** STATUS? round trips, one connection per check, every 20 ms from a plain child process. */
  statusMs: Percentiles;
  /** The same poll, over the same window, of a bare Node server answering OK (ok-server.ts): what the box adds. Absent in results from before it was measured. */
  controlMs?: Percentiles;
  /** SIM#ESTOP#ON connect → ACK from a plain child process; the relay is open before the ACK. */
  estopMs: Percentiles;
  sessions: number;
  /** After the stall ended: session events on Kafka and sessions in the ledger. */
  kafka: { messages: number; missing: number; duplicated: number; seqInOrder: boolean; drainedS: number };
  ledger: { sessions: number; missing: number; notClosed: number };
  exitCode: number | null;
  loadavgBefore: string;
  loadavgAfter: string;
  elapsedS: number;
}

export interface SlowStoragePart {
  date: string;
  pollEveryMs: number;
  estopsPerRun: number;
  runs: SlowStorageRun[];
}
