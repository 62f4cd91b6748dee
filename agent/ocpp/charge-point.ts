// Over 400 lines (about 630): one message table of OCPP 1.6J's Core profile (each CSMS call and each
// transaction message a short method) around one durable queue; the pure parts live beside it
// (status.ts, stop-reason.ts, meter-values.ts, settings.ts, journal.ts).
//
// The OCPP 1.6J charge point: a northbound interface beside the TCP protocol and Kafka, on the same
// charging core. It turns the core's telemetry into transactions (StartTransaction when energy starts
// to flow, MeterValues, StopTransaction with the session's final register), reports the connector
// status, and carries the CSMS's commands to the core through the same path as the TCP protocol.
//
// Transaction messages go through a durable queue (journal.ts): written and synced before they are
// sent, sent one at a time in order once the CSMS accepted the BootNotification, removed only when
// answered. A StopTransaction or MeterValues queued before its StartTransaction was answered gets the
// transactionId when it is sent. After a crash, a transaction left open is stopped with the first
// meter reading after the restart (the relay fell open with the process, so nothing flowed since).
import { uptime } from 'node:os';
import type { MeterReading } from '../../drivers/types.js';
import type { FaultCode, SessionEndReason, TelemetryEvent } from '../charging/types.js';
import type { Config } from '../config/schema.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { Logger } from '../logging/logger.js';
import type { AgentPort, Northbound } from '../northbound.js';
import { isPositive } from '../protocol/commands.js';
import { VERSION } from '../version.js';
import { Journal, type JournalRecord, type MessageRecord, type OpenTransaction, type TransactionAction } from './journal.js';
import { OcppLink, isCallError } from './link.js';
import { clockSlot, meterValue, periodicDue, registerValue, registerWh } from './meter-values.js';
import { changeConfiguration, defaultSettings, getConfiguration, type OcppSettings } from './settings.js';
import { chargePointStatus, connectorStatus, sameStatus, type ConnectorStatus } from './status.js';
import { stopReason, type StopContext } from './stop-reason.js';

export interface OcppOptions {
  config: Config;
  log: Logger;
}

interface Queued {
  record: MessageRecord;
  durable: boolean;
  attempts: number;
}

/** The session the core is running, as this interface follows it. */
interface Current {
  session: string;
  idTag: string;
  /** StartTransaction queued: energy flows for this session. */
  started: boolean;
  meterStartWh?: number;
  startedAt?: string;
  lastSampleMs?: number;
  fault?: FaultCode;
  override?: StopContext['override'];
}

const CONNECTOR = 1;
const ID_TAG_MAX = 20;
const BOOT_RETRY_DEFAULT_S = 30;
const CALL_FAILED_RETRY_MS = 5000;
const STOP_DRAIN_MS = 2000;

export function createOcppChargePoint(options: OcppOptions): OcppChargePoint {
  return new OcppChargePoint(options);
}

export class OcppChargePoint implements Northbound {
  readonly name = 'ocpp';
  private agent!: AgentPort;
  private link!: OcppLink;
  private journal!: Journal;
  private readonly settings: OcppSettings;
  private readonly queue: Queued[] = [];
  private readonly transactionIds = new Map<string, number>();
  private configRecords = new Map<string, string>();
  private nextSeq = 1;
  private current: Current | undefined;
  /** idTag of a RemoteStartTransaction being carried to the core: its SESSION_STARTED is ours. */
  private remoteIdTag: string | undefined;
  private recovering: OpenTransaction[] = [];
  private recoveryTimer: NodeJS.Timeout | undefined;
  private lastReading: MeterReading | undefined;
  /** The clock-aligned slot of the last reading, with the interval it was counted in (a changed interval counts anew). */
  private lastClockSlot: { intervalS: number; slot: number } | undefined;
  private accepted = false;
  private bootRunning = false;
  private sent: { connector?: ConnectorStatus; chargePoint?: ConnectorStatus } = {};
  private endedWhilePlugged = false;
  private scheduledInoperative = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: OcppOptions) {
    this.settings = defaultSettings(options.config);
  }

  private get log(): Logger {
    return this.options.log;
  }

  async start(agent: AgentPort): Promise<void> {
    const { config } = this.options;
    this.agent = agent;
    const { journal, state } = await Journal.open(config.stateDir);
    this.journal = journal;
    if (state.badLines > 0) this.log.warning(LOG_EVENTS.ocppJournalError, { op: 'replay', bad_lines: state.badLines, path: journal.path });
    for (const [key, value] of state.config) if (changeConfiguration(this.settings, key, value) === 'Accepted') this.configRecords.set(key, value);
    for (const record of state.pending) this.queue.push({ record, durable: true, attempts: 0 });
    for (const [session, id] of state.transactionIds) this.transactionIds.set(session, id);
    this.nextSeq = state.nextSeq;
    this.recovering = [...state.open.values()];
    if (this.recovering.length > 0) {
      // no reading within the stale limit: close with the last register the journal kept
      this.recoveryTimer = setTimeout(() => this.recoverOpen(undefined), config.charging.meterStaleMs);
    }
    this.link = new OcppLink({
      url: config.ocpp.url,
      identity: config.ocpp.chargePointId ?? config.cpId,
      securityProfile: config.ocpp.securityProfile,
      passwordFile: config.ocpp.passwordFile,
      caFile: config.ocpp.caFile,
      callTimeoutMs: config.ocpp.callTimeoutS * 1000,
      pingIntervalS: this.settings.webSocketPingIntervalS,
      reconnectMaxMs: config.ocpp.reconnectMaxS * 1000,
      log: this.log,
      handlers: this.handlers(),
      onOpen: () => void this.onOpen(),
      onDown: () => this.wake(),
    });
    await this.link.start();
    this.loop = this.sendLoop();
    this.log.info(LOG_EVENTS.ocppStarted, { url: config.ocpp.url, queued: this.queue.length, open_transactions: this.recovering.length });
  }

  async stop(): Promise<void> {
    if (this.link?.connected && this.accepted) await this.drained(STOP_DRAIN_MS);
    this.stopped = true;
    clearTimeout(this.recoveryTimer);
    clearInterval(this.heartbeatTimer);
    this.wake();
    await this.link?.stop();
    this.wake();
    await this.loop;
    await this.journal?.close();
  }

  // ---- what the core does

  onTelemetry(event: TelemetryEvent): void {
    try {
      this.follow(event);
    } catch (error) {
      this.log.err(LOG_EVENTS.ocppInternalError, { type: event.type, error: (error as Error).message });
    }
    this.wake();
  }

  onReading(reading: MeterReading): void {
    this.lastReading = reading;
    if (this.recovering.length > 0) this.recoverOpen(reading);
    const current = this.current;
    if (current?.started && periodicDue(current.lastSampleMs, reading.takenAtMs, this.settings.meterValueSampleIntervalS)) {
      current.lastSampleMs = reading.takenAtMs;
      this.sampleTransaction(current, reading, 'Sample.Periodic');
    }
    const intervalS = this.settings.clockAlignedDataIntervalS;
    const slot = clockSlot(reading.takenAtMs, intervalS);
    const last = this.lastClockSlot;
    if (slot !== undefined && last?.intervalS === intervalS && slot !== last.slot) this.sampleClock(reading);
    this.lastClockSlot = slot === undefined ? undefined : { intervalS, slot };
    this.wake();
  }

  private follow(event: TelemetryEvent): void {
    switch (event.type) {
      case 'SESSION_STARTED':
        return this.sessionStarted(event);
      case 'CP_STATUS':
        if (event.state === 'Charging' && event.session_id && this.current?.session === event.session_id && !this.current.started) {
          this.startTransaction(this.current, event);
        }
        return;
      case 'AVERIADO':
        if (this.current && this.current.session === event.session_id) this.current.fault = event.fault;
        return;
      case 'SUPPLY_END':
        return this.sessionEnded(event);
      default:
        return;
    }
  }

  private sessionStarted(event: TelemetryEvent): void {
    const idTag = (event.user_id ?? '').slice(0, ID_TAG_MAX);
    const fromCsms = this.remoteIdTag === event.user_id;
    this.current = { session: event.session_id!, idTag, started: false };
    this.endedWhilePlugged = false;
    if (fromCsms || this.settings.localAuthList.includes(idTag)) return;
    // authorized through the original central system: the CSMS is asked too, once the core has answered
    setImmediate(() => void this.authorizeLocal(event.session_id!, idTag));
  }

  private startTransaction(current: Current, event: TelemetryEvent): void {
    current.started = true;
    current.meterStartWh = registerWh(event.meter_import_kwh ?? this.lastReading?.importKwh ?? 0);
    current.startedAt = event.ts;
    current.lastSampleMs = Date.parse(event.ts);
    this.enqueue(current.session, 'StartTransaction', { connectorId: CONNECTOR, idTag: current.idTag, meterStart: current.meterStartWh, timestamp: event.ts }, current.meterStartWh);
  }

  private sessionEnded(event: TelemetryEvent): void {
    const current = this.current;
    if (!current || current.session !== event.session_id) return;
    this.current = undefined;
    this.endedWhilePlugged = true;
    if (this.scheduledInoperative) setImmediate(() => this.applyInoperative());
    if (!current.started) return;
    const meterStop = registerWh(event.meter_import_kwh ?? this.lastReading?.importKwh ?? 0);
    const timestamp = event.ended_at ?? event.ts;
    const reason = stopReason(event.reason as SessionEndReason, { override: current.override, fault: current.fault });
    const transactionData = [registerValue(current.meterStartWh!, current.startedAt!, 'Transaction.Begin'), registerValue(meterStop, timestamp, 'Transaction.End')];
    this.enqueue(current.session, 'StopTransaction', { idTag: current.idTag, meterStop, timestamp, reason, transactionData }, meterStop);
  }

  private sampleTransaction(current: Current, reading: MeterReading, context: 'Sample.Periodic' | 'Trigger'): void {
    const value = meterValue(reading, context, this.settings.sampledData);
    this.enqueue(current.session, 'MeterValues', { connectorId: CONNECTOR, meterValue: [value] }, registerWh(reading.importKwh));
  }

  /** Clock-aligned values: part of the transaction's record while one runs, sent when possible otherwise. */
  private sampleClock(reading: MeterReading): void {
    const value = meterValue(reading, 'Sample.Clock', this.settings.alignedData);
    if (this.current?.started) {
      this.enqueue(this.current.session, 'MeterValues', { connectorId: CONNECTOR, meterValue: [value] }, registerWh(reading.importKwh));
    } else if (this.ready()) {
      this.link.call('MeterValues', { connectorId: CONNECTOR, meterValue: [value] }).catch((error) => this.callFailed('MeterValues', error));
    }
  }

  /** Transactions a crash left open: stopped with the first reading after the restart (or the last one journaled). */
  private recoverOpen(reading: MeterReading | undefined): void {
    clearTimeout(this.recoveryTimer);
    const bootedAtMs = Date.now() - uptime() * 1000;
    for (const open of this.recovering) {
      const readWh = reading ? registerWh(reading.importKwh) : undefined;
      const meterStop = readWh !== undefined && readWh >= open.lastEnergyWh ? readWh : open.lastEnergyWh;
      const timestamp = new Date(reading?.takenAtMs ?? Date.now()).toISOString();
      const reason = stopReason('interrupted', { machineRebooted: bootedAtMs > open.lastAtMs });
      this.enqueue(open.session, 'StopTransaction', { idTag: open.idTag, meterStop, timestamp, reason, transactionData: [registerValue(meterStop, timestamp, 'Transaction.End')] }, meterStop);
      this.log.warning(LOG_EVENTS.ocppTransactionRecovered, { session: open.session, meter_stop_wh: meterStop, reason, closed_with: readWh === meterStop ? 'first_reading_after_restart' : 'last_journaled_register' });
    }
    this.recovering = [];
  }

  // ---- the durable queue

  private enqueue(session: string, action: TransactionAction, payload: Record<string, unknown>, energyWh?: number): void {
    const record: MessageRecord = { t: 'msg', seq: this.nextSeq++, session, action, payload, energyWh, atMs: Date.now() };
    const entry: Queued = { record, durable: false, attempts: 0 };
    this.queue.push(entry);
    this.journal.append(record).then(
      () => {
        entry.durable = true;
        this.wake();
      },
      (error: Error) => {
        // the disk refused it: it is still sent from memory, and said so
        this.log.err(LOG_EVENTS.ocppJournalError, { op: 'append', action, session, error: error.message });
        entry.durable = true;
        this.wake();
      },
    );
  }

  private persist(record: JournalRecord): void {
    this.journal.append(record).catch((error: Error) => this.log.err(LOG_EVENTS.ocppJournalError, { op: 'append', record: record.t, error: error.message }));
  }

  private ready(): boolean {
    return !this.stopped && this.accepted && this.link.connected;
  }

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  private sleep(ms?: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wake(), ms);
      this.wakeUp = () => (clearTimeout(timer), resolve());
    });
  }

  /** One sender: queued transaction messages first, in order; then the connector status when it changed. */
  private async sendLoop(): Promise<void> {
    while (!this.stopped) {
      if (!this.ready()) {
        await this.sleep();
        continue;
      }
      const head = this.queue[0];
      if (head && !head.durable) {
        await this.sleep();
        continue;
      }
      if (head) {
        const retryInMs = await this.send(head);
        if (retryInMs !== undefined) await this.sleep(retryInMs);
        continue;
      }
      if (!(await this.reportStatus())) await this.sleep();
    }
  }

  /** Sends the queue's head; returns how long to wait before trying again when it was not answered. */
  private async send(entry: Queued): Promise<number | undefined> {
    const { record } = entry;
    const payload = { ...record.payload };
    if (record.action !== 'StartTransaction') {
      const transactionId = this.transactionIds.get(record.session);
      if (transactionId === undefined && record.action === 'StopTransaction') return this.drop(entry, 'no StartTransaction was answered for this session');
      if (transactionId !== undefined) payload.transactionId = transactionId;
    }
    let answer: Record<string, any>;
    try {
      answer = await this.link.call(record.action, payload);
    } catch (error) {
      if (!isCallError(error)) {
        this.callFailed(record.action, error);
        return CALL_FAILED_RETRY_MS; // the link went down or the CSMS did not answer: sent again, in order
      }
      entry.attempts += 1;
      this.log.warning(LOG_EVENTS.ocppMessageFailed, { action: record.action, session: record.session, attempt: entry.attempts, code: error.rpcErrorCode, error: error.message });
      if (entry.attempts >= this.settings.transactionMessageAttempts) return this.drop(entry, `CSMS answered ${error.rpcErrorCode} ${entry.attempts} times`);
      return this.settings.transactionMessageRetryIntervalS * 1000 * entry.attempts;
    }
    this.answered(record, answer);
    this.queue.shift();
    this.persist({ t: 'ack', seq: record.seq });
    if (this.idle()) void this.compact();
    return undefined;
  }

  private answered(record: MessageRecord, answer: Record<string, any>): void {
    if (record.action === 'StartTransaction') {
      const transactionId = Number(answer.transactionId);
      this.transactionIds.set(record.session, transactionId);
      this.persist({ t: 'txid', session: record.session, id: transactionId });
      const status = String(answer.idTagInfo?.status ?? 'Accepted');
      this.log.info(LOG_EVENTS.ocppTransactionStarted, { session: record.session, transaction_id: transactionId, id_tag_status: status });
      if (status !== 'Accepted' && this.settings.stopTransactionOnInvalidId && this.current?.session === record.session) this.endSession('DeAuthorized');
    } else if (record.action === 'StopTransaction') {
      this.log.info(LOG_EVENTS.ocppTransactionStopped, {
        session: record.session,
        transaction_id: this.transactionIds.get(record.session),
        meter_stop_wh: record.payload.meterStop,
        reason: record.payload.reason,
      });
    }
  }

  private drop(entry: Queued, why: string): undefined {
    this.log.err(LOG_EVENTS.ocppMessageDropped, { action: entry.record.action, session: entry.record.session, seq: entry.record.seq, why });
    this.queue.shift();
    this.persist({ t: 'ack', seq: entry.record.seq });
    return undefined;
  }

  /** Nothing owed to the CSMS and no transaction that could owe something. */
  private idle(): boolean {
    return this.queue.length === 0 && !this.current && this.recovering.length === 0;
  }

  private async compact(): Promise<void> {
    const keep = (): JournalRecord[] => [...this.configRecords].map(([key, value]) => ({ t: 'config', key, value }));
    await this.journal.compact(keep, () => this.idle()).catch((error: Error) => this.log.err(LOG_EVENTS.ocppJournalError, { op: 'compact', error: error.message }));
  }

  /** Resolves once the queue is empty (or after ms). */
  private async drained(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.queue.length > 0 && Date.now() < deadline && this.link.connected) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  private callFailed(action: string, error: unknown): void {
    this.log.info(LOG_EVENTS.ocppMessageFailed, { action, error: error instanceof Error ? error.message : String(error) });
  }

  // ---- status

  private currentStatus(): ConnectorStatus {
    const view = this.agent.view();
    if (!view.plugged) this.endedWhilePlugged = false;
    const since = view.session?.chargingSinceMs;
    const reading = view.lastReading;
    return connectorStatus({
      state: view.state,
      faults: view.faults,
      plugged: view.plugged,
      powerW: reading?.powerW,
      chargingForMs: since === undefined || !reading ? undefined : reading.takenAtMs - since,
      endedWhilePlugged: this.endedWhilePlugged && view.state === 'Available',
    });
  }

  /** Sends StatusNotification for connector 0 and 1 where they changed; false when nothing was to send. */
  private async reportStatus(): Promise<boolean> {
    const connector = this.currentStatus();
    const whole = chargePointStatus(connector);
    const changes: Array<[0 | 1, ConnectorStatus]> = [];
    if (!sameStatus(this.sent.chargePoint, whole)) changes.push([0, whole]);
    if (!sameStatus(this.sent.connector, connector)) changes.push([CONNECTOR, connector]);
    if (changes.length === 0) return false;
    for (const [connectorId, status] of changes) {
      try {
        await this.link.call('StatusNotification', { connectorId, ...status, timestamp: new Date().toISOString() });
        if (connectorId === 0) this.sent.chargePoint = status;
        else this.sent.connector = status;
      } catch (error) {
        this.callFailed('StatusNotification', error);
        await this.sleep(CALL_FAILED_RETRY_MS);
        return true;
      }
    }
    return true;
  }

  // ---- the link

  private async onOpen(): Promise<void> {
    this.sent = {}; // the CSMS hears the current status again after every reconnect
    if (this.accepted) {
      this.wake();
      return;
    }
    await this.boot();
  }

  /** BootNotification until Accepted; while Pending or Rejected, again after the interval the CSMS gave. */
  private async boot(): Promise<void> {
    if (this.bootRunning) return;
    this.bootRunning = true;
    try {
      while (!this.stopped && this.link.connected && !this.accepted) {
        let retryS = BOOT_RETRY_DEFAULT_S;
        try {
          const answer = await this.link.call<{ status: string; interval: number; currentTime: string }>('BootNotification', this.bootPayload());
          this.log.notice(LOG_EVENTS.ocppBoot, { status: answer.status, interval_s: answer.interval, csms_time: answer.currentTime });
          if (answer.status === 'Accepted') {
            this.accepted = true;
            if (answer.interval > 0) this.settings.heartbeatIntervalS = answer.interval;
            this.armHeartbeat();
            this.wake();
            return;
          }
          if (answer.interval > 0) retryS = answer.interval;
        } catch (error) {
          this.callFailed('BootNotification', error);
        }
        await new Promise((resolve) => setTimeout(resolve, retryS * 1000));
      }
    } finally {
      this.bootRunning = false;
    }
  }

  private bootPayload(): Record<string, unknown> {
    const { ocpp, cpId, meter } = this.options.config;
    return {
      chargePointVendor: ocpp.vendor,
      chargePointModel: ocpp.model,
      chargePointSerialNumber: cpId.slice(0, 25),
      firmwareVersion: VERSION.slice(0, 50),
      meterType: (meter.driver === 'sim' ? 'simulated' : meter.model).slice(0, 25),
    };
  }

  private armHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (this.ready()) this.link.call('Heartbeat', {}).catch((error) => this.callFailed('Heartbeat', error));
    }, this.settings.heartbeatIntervalS * 1000);
    this.heartbeatTimer.unref();
  }

  // ---- commands from the CSMS

  private handlers(): Record<string, (params: any) => unknown> {
    const logged = (action: string, handler: (params: any) => Record<string, unknown>) => (params: any) => {
      const answer = handler(params);
      this.log.info(LOG_EVENTS.ocppRequest, { action, status: answer.status });
      return answer;
    };
    return {
      RemoteStartTransaction: logged('RemoteStartTransaction', (p: { connectorId?: number; idTag: string }) => ({ status: this.remoteStart(p) })),
      RemoteStopTransaction: logged('RemoteStopTransaction', (p: { transactionId: number }) => ({ status: this.remoteStop(p.transactionId) })),
      ChangeAvailability: logged('ChangeAvailability', (p: { connectorId: number; type: 'Operative' | 'Inoperative' }) => ({ status: this.changeAvailability(p) })),
      Reset: logged('Reset', (p: { type: 'Soft' | 'Hard' }) => ({ status: this.reset(p.type) })),
      UnlockConnector: logged('UnlockConnector', () => ({ status: 'NotSupported' })),
      GetConfiguration: logged('GetConfiguration', (p: { key?: string[] }) => getConfiguration(this.settings, p.key)),
      ChangeConfiguration: logged('ChangeConfiguration', (p: { key: string; value: string }) => ({ status: this.changeConfiguration(p.key, p.value) })),
      TriggerMessage: logged('TriggerMessage', (p: { requestedMessage: string; connectorId?: number }) => ({ status: this.trigger(p.requestedMessage, p.connectorId) })),
      DataTransfer: logged('DataTransfer', () => ({ status: 'Rejected' })),
      ClearCache: logged('ClearCache', () => ({ status: 'Accepted' })), // no authorization cache is kept
    };
  }

  private remoteStart({ connectorId, idTag }: { connectorId?: number; idTag: string }): 'Accepted' | 'Rejected' {
    if (connectorId !== undefined && connectorId !== CONNECTOR) return 'Rejected';
    const view = this.agent.view();
    if (view.session || view.faults.length > 0 || !view.inService) return 'Rejected';
    if (this.settings.authorizeRemoteTxRequests && !this.settings.localAuthList.includes(idTag)) {
      setImmediate(() => void this.authorizeThenStart(idTag));
      return 'Accepted';
    }
    return this.authorizeOnCore(idTag) ? 'Accepted' : 'Rejected';
  }

  private authorizeOnCore(idTag: string): boolean {
    this.remoteIdTag = idTag;
    try {
      return isPositive(this.agent.handle({ kind: 'authorize', driverId: idTag }, 'ocpp'));
    } finally {
      this.remoteIdTag = undefined;
    }
  }

  private async authorizeThenStart(idTag: string): Promise<void> {
    if ((await this.authorize(idTag)) === 'Accepted') this.authorizeOnCore(idTag);
  }

  /** Authorize.req; offline (or no answer) counts as accepted: the session was authorized locally. */
  private async authorize(idTag: string): Promise<string> {
    if (!this.ready()) return 'Accepted';
    try {
      const answer = await this.link.call<{ idTagInfo: { status: string } }>('Authorize', { idTag });
      this.log.info(LOG_EVENTS.ocppAuthorize, { id_tag_status: answer.idTagInfo.status });
      return answer.idTagInfo.status;
    } catch (error) {
      this.callFailed('Authorize', error);
      return 'Accepted';
    }
  }

  /** A driver authorized through the original central system: the CSMS may still refuse the idTag. */
  private async authorizeLocal(session: string, idTag: string): Promise<void> {
    const status = await this.authorize(idTag);
    if (status !== 'Accepted' && this.current?.session === session) this.endSession('DeAuthorized');
  }

  private remoteStop(transactionId: number): 'Accepted' | 'Rejected' {
    const current = this.current;
    if (!current?.started || this.transactionIds.get(current.session) !== transactionId) return 'Rejected';
    this.endSession();
    return 'Accepted';
  }

  /** Ends the running session and leaves the charge point in service (PARAR then REANUDAR, as the TCP protocol would). */
  private endSession(override?: StopContext['override']): void {
    if (this.current) this.current.override = override;
    const wasInService = this.agent.view().inService;
    this.agent.handle({ kind: 'stop' }, 'ocpp');
    if (wasInService && !this.scheduledInoperative) this.agent.handle({ kind: 'resume' }, 'ocpp');
  }

  private changeAvailability({ connectorId, type }: { connectorId: number; type: 'Operative' | 'Inoperative' }): 'Accepted' | 'Rejected' | 'Scheduled' {
    if (connectorId !== 0 && connectorId !== CONNECTOR) return 'Rejected';
    if (type === 'Operative') {
      this.scheduledInoperative = false;
      if (this.agent.view().inService) return 'Accepted';
      return isPositive(this.agent.handle({ kind: 'resume' }, 'ocpp')) ? 'Accepted' : 'Rejected';
    }
    if (this.agent.view().session) {
      this.scheduledInoperative = true;
      return 'Scheduled';
    }
    return isPositive(this.agent.handle({ kind: 'stop' }, 'ocpp')) ? 'Accepted' : 'Rejected';
  }

  private applyInoperative(): void {
    if (!this.scheduledInoperative) return;
    this.scheduledInoperative = false;
    this.agent.handle({ kind: 'stop' }, 'ocpp');
    this.wake();
  }

  private reset(type: 'Soft' | 'Hard'): 'Accepted' {
    setImmediate(() => {
      this.log.notice(LOG_EVENTS.ocppReset, { type, session: this.current?.session });
      if (this.current) this.endSession(type === 'Soft' ? 'SoftReset' : 'HardReset');
      this.agent.restart(type === 'Soft' ? 'soft' : 'hard');
    });
    return 'Accepted';
  }

  private changeConfiguration(key: string, value: string): string {
    const status = changeConfiguration(this.settings, key, value);
    if (status !== 'Accepted') return status;
    this.configRecords.set(key, value);
    this.persist({ t: 'config', key, value });
    if (key === 'HeartbeatInterval' && this.accepted) this.armHeartbeat();
    if (key === 'WebSocketPingInterval') this.link.setPingInterval(this.settings.webSocketPingIntervalS);
    return status;
  }

  private trigger(message: string, connectorId: number | undefined): 'Accepted' | 'Rejected' | 'NotImplemented' {
    if (connectorId !== undefined && connectorId !== 0 && connectorId !== CONNECTOR) return 'Rejected';
    const actions: Record<string, () => void> = {
      BootNotification: () => void this.link.call('BootNotification', this.bootPayload()).catch((error) => this.callFailed('BootNotification', error)),
      Heartbeat: () => void this.link.call('Heartbeat', {}).catch((error) => this.callFailed('Heartbeat', error)),
      StatusNotification: () => {
        this.sent = {};
        this.wake();
      },
      MeterValues: () => this.triggeredMeterValues(),
    };
    const action = actions[message];
    if (!action) return 'NotImplemented';
    setImmediate(action);
    return 'Accepted';
  }

  private triggeredMeterValues(): void {
    const reading = this.lastReading;
    if (!reading) return;
    if (this.current?.started) return this.sampleTransaction(this.current, reading, 'Trigger');
    this.link.call('MeterValues', { connectorId: CONNECTOR, meterValue: [meterValue(reading, 'Trigger', this.settings.sampledData)] }).catch((error) => this.callFailed('MeterValues', error));
  }
}
