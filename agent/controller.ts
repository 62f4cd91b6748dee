// The controller: builds every part, starts them in order, feeds the pure core with events from
// the drivers, the commands and the clock, and carries out the actions it returns. Stops in
// reverse: commands in, then the meter, then the brokers, then the drivers. Protocols reach it
// through the ChargePoint interface (charge-point.ts); the TCP/MQTT lines are parsed and answered
// in protocol/dispatch.ts, INFO in protocol/info.ts, the core's decisions logged by
// logging/core-events.ts. Over 400 lines (about 460): what is left is the loop itself (start and
// stop order of every part, northbound interfaces included, inputs, the core's actions and timers),
// which reads best in one place.
import type { AddressInfo } from 'node:net';
import type { Hardware, MeterReading } from '../drivers/types.js';
import { MeterLink } from './meter/link.js';
import { chargeState, initialState, next } from './charging/state-machine.js';
import type { ChargeCommand, ChargePoint, CommandOutcome } from './charge-point.js';
import type { CoreAction, CoreConfig, CoreEvent, CoreState, StepResult, TelemetryEvent } from './charging/types.js';
import type { Config } from './config/schema.js';
import { createHardware, type HardwareSetup } from './hardware.js';
import { startHealthHttpServer, type HealthHttpServer } from './http/health-http-server.js';
import { LOG_EVENTS } from './logging/events.js';
import type { CoreView, Northbound } from './northbound.js';
import { logFaultChanges, logTelemetry } from './logging/core-events.js';
import type { Logger } from './logging/logger.js';
import type { Request } from './protocol/commands.js';
import { createProtocolDispatch, type ProtocolDispatch } from './protocol/dispatch.js';
import { HealthServer, type DropReason } from './protocol/health-server.js';
import type { AgentSnapshot } from './snapshot.js';
import { createHeartbeats, type Heartbeats } from './systemd/liveness.js';
import { createNotifier, type Notifier } from './systemd/notify.js';
import { createTelemetryPipeline, type LedgerTelemetryPipeline } from './telemetry/pipeline.js';
import { DeadManPulse } from './safety/dead-man.js';
import { VERSION } from './version.js';

export interface AgentOptions {
  config: Config;
  log: Logger;
  /** Injected in tests; built from the config otherwise. */
  hardware?: HardwareSetup;
  pipeline?: LedgerTelemetryPipeline;
  notifier?: Notifier;
  env?: NodeJS.ProcessEnv;
  /** Called when the hardware is lost: the CLI exits non-zero so systemd restarts the agent. */
  onFatal?: (error: unknown) => void;
  /** Northbound interfaces beside the TCP protocol; built from the config (ocpp.url) when absent. */
  northbound?: Northbound[];
  /** A northbound interface asked for a restart (OCPP Reset): the CLI stops the agent and exits. */
  onRestart?: (kind: 'soft' | 'hard') => void;
}

export interface AgentAddresses {
  health: AddressInfo;
}

const TICK_MS = 1000;
/** How long each watched part may stay silent before the systemd watchdog stops being fed. */
const LIVENESS_LIMITS_MS = { main_loop: 3000, meter: 30_000, relay_supervision: 3000 };

export class Agent implements ChargePoint {
  private setup!: HardwareSetup;
  private protocol!: ProtocolDispatch;
  private readonly telemetryListeners = new Set<(event: TelemetryEvent) => void>();
  private pipeline!: LedgerTelemetryPipeline;
  private meterLink!: MeterLink;
  private healthServer!: HealthServer;
  private httpServer: HealthHttpServer | undefined;
  private notifier!: Notifier;
  private deadMan: DeadManPulse | undefined;
  private readonly coreConfig: CoreConfig;
  private core: CoreState = initialState();
  private readonly queue: CoreEvent[] = [];
  private dispatching = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly unwatch: Array<() => void> = [];
  private readonly heartbeats: Heartbeats = createHeartbeats(LIVENESS_LIMITS_MS);
  private readonly healthChecks = { ok: 0, ko: 0 };
  private readonly drops: Record<DropReason, number> = { slow_reader: 0, line_too_long: 0, evicted: 0, idle: 0 };
  private readonly startedAtMs = Date.now();
  private stopping: Promise<void> | undefined;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private recovered = false;
  private started = false;
  private northbound: Northbound[] = [];

  constructor(private readonly options: AgentOptions) {
    const { config } = options;
    this.coreConfig = {
      cpId: config.cpId,
      pricePerKwh: config.pricePerKwh,
      authorizationTimeoutMs: config.charging.authorizationTimeoutS * 1000,
      consumoIntervalMs: config.charging.consumoIntervalMs,
      meterStaleMs: config.charging.meterStaleMs,
      feedbackTimeoutMs: config.charging.feedbackTimeoutMs,
      hasFeedback: true,
      // a reading after the contactor opened: the next poll, or the one after a failed one
      finalReadingWaitMs: 2 * config.meter.pollIntervalMs + config.meter.timeoutMs,
    };
  }

  get log(): Logger {
    return this.options.log;
  }

  get hardware(): Hardware {
    return this.setup.hardware;
  }

  get hardwareSetup(): HardwareSetup {
    return this.setup;
  }

  async start(): Promise<AgentAddresses> {
    const { config, log } = this.options;
    log.info(LOG_EVENTS.agentStarted, { version: VERSION, cp_id: config.cpId, pid: process.pid, node: process.version });
    this.setup = this.options.hardware ?? (await createHardware(config, log));
    this.coreConfig.hasFeedback = this.setup.hardware.relayFeedback !== undefined;
    this.setup.hardware.relay.open();
    const { heartbeat } = this.setup.hardware;
    if (heartbeat) this.deadMan = new DeadManPulse(heartbeat, config.gpio.heartbeatHz, log);
    // SIM# lines reach the simulation only when the hardware is simulated
    this.protocol = createProtocolDispatch({ chargePoint: this, log, simulation: this.setup.simulation });

    this.pipeline = this.options.pipeline ?? createTelemetryPipeline({ config, log, onCommand: (line) => this.protocol.handleLine(line, 'mqtt') });
    await this.pipeline.start();
    // sessions a crash left open are closed on the first good reading (see recoverInterrupted)
    this.recoveryTimer = setTimeout(() => this.recoverInterrupted(undefined), this.options.config.charging.meterStaleMs);
    // The store opens in its own thread: numbering continues from the ledger once it has opened.
    void this.pipeline.sessionCount().then((count) => {
      if (count > this.core.sessionNo) this.core = { ...this.core, sessionNo: count };
    });

    this.watchInputs();
    this.meterLink = new MeterLink({
      createMeter: this.setup.createMeter,
      settings: { ...config.meter, meterStaleMs: config.charging.meterStaleMs },
      log,
      logFields: { meter: this.setup.meterLabel },
      onReading: (reading) => this.onReading(reading),
    });
    await this.meterLink.start();
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
    this.pipeline.publishStatus({ state: chargeState(this.core), in_service: this.core.inService, faults: this.core.faults.map((fault) => fault.code) });

    this.healthServer = new HealthServer({
      ...config.health,
      handle: (request, peer) => this.protocol.handle(request, peer),
      log,
      onDrop: (reason) => (this.drops[reason] += 1),
    });
    const health = await this.healthServer.start();
    this.httpServer = await this.startHttp();
    await this.startNorthbound();
    this.started = true;

    this.notifier = this.options.notifier ?? createNotifier({ log, env: this.options.env, liveness: () => this.heartbeats.check() });
    this.notifier.start();
    await this.notifier.ready(this.statusText());
    log.notice(LOG_EVENTS.agentReady, {
      health: `${health.address}:${health.port}`,
      http: this.httpServer ? describeAddress(this.httpServer.address()) : 'off',
      hardware: this.setup.kind,
      meter: this.setup.meterLabel,
      state: chargeState(this.core),
      kafka: config.kafka.brokers.length > 0 ? config.kafka.brokers.join(',') : 'off',
      mqtt: config.mqtt.url || 'off',
      state_dir: config.stateDir,
    });
    return { health };
  }

  /** SIGTERM: open the relay, end a running session (shutdown), stop in reverse order, flush. */
  stop(reason = 'signal'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  /** A northbound interface that fails to start is logged and left out: charging and the TCP protocol go on. */
  private async startNorthbound(): Promise<void> {
    const { config, log } = this.options;
    const wanted = this.options.northbound ?? (config.ocpp.url ? [await this.createOcpp()] : []);
    const port = { handle: this.handle.bind(this), snapshot: this.snapshot.bind(this), view: this.view.bind(this), restart: (kind: 'soft' | 'hard') => this.options.onRestart?.(kind) };
    for (const part of wanted) {
      try {
        await part.start(port);
        this.northbound.push(part);
      } catch (error) {
        log.err(LOG_EVENTS.northboundUnavailable, { part: part.name, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  private async createOcpp(): Promise<Northbound> {
    const { createOcppChargePoint } = await import('./ocpp/charge-point.js');
    return createOcppChargePoint({ config: this.options.config, log: this.options.log.child({ link: 'ocpp' }) });
  }

  /** HTTP /health and /metrics are for monitoring: a port that cannot be had is logged, charging goes on. */
  private async startHttp(): Promise<HealthHttpServer | undefined> {
    try {
      return await startHealthHttpServer(this.options.config.http, { snapshot: () => this.snapshot(), log: this.options.log });
    } catch (error) {
      this.options.log.err('http_unavailable', { error: error instanceof Error ? error.message : String(error) });
      return undefined;
    }
  }

  /** Last resort on an unexpected error: drive the relay open synchronously. */
  emergencyOpen(): void {
    try {
      this.setup?.hardware.relay.open();
    } catch {
      // the line's default state is open; nothing more can be done from here
    } finally {
      this.deadMan?.stop(); // the dead-man circuit drops the coil too
    }
  }

  private async shutdown(reason: string): Promise<void> {
    const { log } = this.options;
    log.notice(LOG_EVENTS.agentStopping, { reason });
    await this.notifier?.stopping('stopping');
    if (this.setup) this.dispatch({ type: 'shutdown' });
    this.deadMan?.stop();
    await Promise.allSettled(this.northbound.map((part) => part.stop()));
    await this.healthServer?.stop();
    await this.httpServer?.stop();
    clearInterval(this.tickTimer);
    clearTimeout(this.wakeTimer);
    for (const unwatch of this.unwatch) unwatch();
    await this.meterLink?.stop();
    if (this.started) this.recoverInterrupted(undefined);
    await this.pipeline?.stop(3000);
    await this.setup?.hardware.release();
    await this.notifier?.stop();
    log.notice(LOG_EVENTS.agentStopped, { reason });
  }

  // ---- events in

  private watchInputs(): void {
    const { relayFeedback, plugPresent, emergencyStop, externalFault } = this.setup.hardware;
    if (relayFeedback) {
      this.dispatch({ type: 'relay_feedback', closed: relayFeedback.read() });
      this.unwatch.push(relayFeedback.watch((closed) => this.dispatch({ type: 'relay_feedback', closed })));
    }
    if (emergencyStop.read()) this.dispatch({ type: 'emergency_stop', active: true });
    this.unwatch.push(emergencyStop.watch((active) => this.dispatch({ type: 'emergency_stop', active })));
    if (externalFault?.read()) this.dispatch({ type: 'hardware_fault', active: true, detail: 'external protection device tripped' });
    if (externalFault) {
      this.unwatch.push(externalFault.watch((active) => this.dispatch({ type: 'hardware_fault', active, detail: 'external protection device tripped' })));
    }
    if (plugPresent.read()) this.dispatch({ type: 'plug', present: true });
    this.unwatch.push(plugPresent.watch((present) => this.dispatch({ type: 'plug', present })));
  }

  /**
   * Closes the sessions a crash left open (reason interrupted). With the first good reading after the
   * restart their energy is exact (the relay line fell open with the process, so nothing flowed since);
   * without a plausible one, with the newest reading that survived the crash (store/billing.ts).
   */
  private recoverInterrupted(reading: MeterReading | undefined): void {
    if (this.recovered) return;
    this.recovered = true;
    clearTimeout(this.recoveryTimer);
    const final = reading && { importKwh: reading.importKwh, takenAtMs: reading.takenAtMs, pricePerKwh: this.options.config.pricePerKwh };
    void this.pipeline.recoverInterrupted(final).then(async (interrupted) => {
      for (const { session, closedWith, rejected, consumoSource, durable } of interrupted) {
        // Logged once committed, as session_started and session_ended are: the line means "in the ledger".
        const committed = await durable;
        this.options.log.warning(LOG_EVENTS.sessionInterrupted, {
          session: session.id,
          driver: session.driverId,
          kwh: session.kwh,
          importe: session.importe,
          meter_import_kwh: session.lastImportKwh,
          closed_with: closedWith,
          first_reading_rejected: rejected,
          consumo_source: consumoSource,
          committed,
        });
      }
    });
  }

  private onReading(reading: MeterReading): void {
    this.recoverInterrupted(reading);
    this.dispatch({ type: 'meter_reading', reading });
    this.pipeline.publishReading(reading, chargeState(this.core));
    for (const part of this.northbound) part.onReading(reading);
  }

  private tick(): void {
    this.heartbeats.beat('main_loop');
    if (Date.now() - this.meterLink.lastAliveMs < LIVENESS_LIMITS_MS.meter) this.heartbeats.beat('meter');
    this.dispatch({ type: 'tick' });
    if (this.superviseRelayLine()) this.heartbeats.beat('relay_supervision');
  }

  /** Reads the feedback contact directly, so a missed edge cannot hide a welded contactor. */
  private superviseRelayLine(): boolean {
    const feedback = this.setup.hardware.relayFeedback;
    if (!feedback) return true;
    const closed = feedback.read();
    if (closed !== this.core.relay.feedbackClosed) this.dispatch({ type: 'relay_feedback', closed });
    return true;
  }

  // ---- the core

  /** Runs one event through the core and carries out its actions, in order. */
  private dispatch(event: CoreEvent): StepResult | undefined {
    if (this.dispatching) {
      this.queue.push(event);
      return undefined;
    }
    this.dispatching = true;
    let result: StepResult | undefined;
    try {
      if (event.type !== 'relay_feedback') this.readOverdueFeedback();
      result = this.step(event);
      for (let queued = this.queue.shift(); queued; queued = this.queue.shift()) this.step(queued);
    } finally {
      this.dispatching = false;
    }
    return result;
  }

  /**
   * Past the feedback deadline, the contact is read before any event is judged: after a loop stall
   * (an emulated or overloaded CPU, a long GC) a timer or a meter reading can run before the contact's
   * edge still waiting in the poll queue, and would latch a contactor that did follow as failed. A
   * contact that bounces back after this read is seen by the debounced input and the 1 s tick, and
   * judged against a fresh deadline.
   */
  private readOverdueFeedback(): void {
    const feedback = this.setup?.hardware.relayFeedback;
    const since = this.core.relay.mismatchSinceMs;
    if (!feedback || since === undefined || Date.now() - since < this.coreConfig.feedbackTimeoutMs) return;
    // the level now, not the debounced one: a debounce timer is one more timer behind the stall
    const closed = feedback.readNow?.() ?? feedback.read();
    if (closed !== this.core.relay.feedbackClosed) this.step({ type: 'relay_feedback', closed });
  }

  private step(event: CoreEvent): StepResult {
    const before = this.core;
    const out = next(this.coreConfig, before, event, Date.now());
    this.core = out.state;
    for (const action of out.actions) this.execute(action);
    logFaultChanges(this.options.log, before, out.state);
    this.meterLink?.setCharging(chargeState(out.state) === 'Charging');
    this.meterLink?.setRecovering(out.state.faults.some((fault) => fault.code === 'meter_stale'));
    this.scheduleWake(out.wakeAtMs);
    this.deadMan?.follow(out.state.relay.commandedClosed);
    // the notifier sends STATUS= only when the text changed: on state changes, not per event
    if (this.started) void this.notifier?.status(this.statusText());
    return out;
  }

  private execute(action: CoreAction): void {
    if (action.type === 'relay') return this.commandRelay(action.close);
    this.pipeline.publish(action.event);
    logTelemetry(this.options.log, action.event);
    for (const part of this.northbound) part.onTelemetry(action.event);
    for (const listener of this.telemetryListeners) {
      try {
        listener(action.event);
      } catch (error) {
        this.options.log.err(LOG_EVENTS.unhandledError, { where: 'telemetry_listener', error });
      }
    }
  }

  private commandRelay(close: boolean): void {
    const { relay } = this.setup.hardware;
    try {
      if (close) relay.close();
      else relay.open();
      this.options.log.info(LOG_EVENTS.relayCommand, { relay: close ? 'close' : 'open' });
    } catch (error) {
      this.options.log.crit('relay_command_failed', { relay: close ? 'close' : 'open', error });
      if (close) this.queue.push({ type: 'hardware_fault', active: true, detail: `relay close failed: ${String(error)}` });
      else this.options.onFatal?.(error); // cannot open the relay: only a restart (line default open) is safe
    }
  }

  private scheduleWake(wakeAtMs: number | undefined): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (wakeAtMs === undefined || this.stopping) return;
    this.wakeTimer = setTimeout(() => {
      // the contact may have moved while the loop was busy: read it before a deadline is judged,
      // so a contactor that did open in time is not latched as welded
      this.superviseRelayLine();
      this.dispatch({ type: 'tick' });
    }, Math.max(0, wakeAtMs - Date.now()));
  }

  // ---- commands, from any protocol (ChargePoint)

  command(command: ChargeCommand, source: string): CommandOutcome {
    const result: CommandOutcome = this.stopping
      ? { accepted: false, reason: 'SHUTTING_DOWN' }
      : (this.dispatch(toCoreEvent(command))?.result ?? { accepted: false, reason: 'BUSY' }); // BUSY: asked from inside a step
    const reason = result.accepted ? undefined : result.reason;
    this.options.log.info(LOG_EVENTS.commandReceived, { command: command.kind, peer: source, accepted: result.accepted, reason });
    return result;
  }

  healthCheck(): boolean {
    const healthy = this.core.faults.length === 0;
    this.healthChecks[healthy ? 'ok' : 'ko'] += 1;
    return healthy;
  }

  onTelemetry(listener: (event: TelemetryEvent) => void): () => void {
    this.telemetryListeners.add(listener);
    return () => this.telemetryListeners.delete(listener);
  }

  /** One protocol line, answered as on the TCP port (the demo and tests drive the agent this way). */
  handleLine(line: string, peer: string): string {
    return this.protocol.handleLine(line, peer);
  }

  /** One parsed request, answered as on the TCP port (a northbound interface's AgentPort). */
  handle(request: Request, peer: string): string {
    return this.protocol.handle(request, peer);
  }

  // ---- what the agent knows about itself

  snapshot(): AgentSnapshot {
    const core = this.core;
    const session = core.session;
    return {
      cpId: this.options.config.cpId,
      version: VERSION,
      state: chargeState(core),
      inService: core.inService,
      faults: core.faults,
      relay: { commandedClosed: core.relay.commandedClosed, feedbackClosed: core.relay.feedbackClosed },
      plugged: core.plugged,
      session: session && {
        id: session.id,
        driverId: session.driverId,
        kwh: session.kwh,
        importe: session.importe,
        startedAt: session.startedAtMs === undefined ? undefined : new Date(session.startedAtMs).toISOString(),
      },
      lastReading: core.lastReading,
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      meter: this.meterLink.qos(),
      telemetry: this.pipeline.status(),
      healthChecks: { ...this.healthChecks },
    };
  }

  view(): CoreView {
    const core = this.core;
    const session = core.session;
    return {
      state: chargeState(core),
      inService: core.inService,
      plugged: core.plugged,
      faults: core.faults,
      session: session && { id: session.id, driverId: session.driverId, chargingSinceMs: session.startedAtMs },
      lastReading: core.lastReading,
    };
  }

  /** Protocol connections dropped on purpose, by reason (for /metrics). */
  get droppedConnections(): Readonly<Record<DropReason, number>> {
    return this.drops;
  }

  liveness() {
    return this.heartbeats.check();
  }

  /** systemd's STATUS=: the state and its faults. Never the growing kWh: every new text forks systemd-notify. */
  private statusText(): string {
    const state = chargeState(this.core);
    const faults = this.core.faults.map((fault) => fault.code);
    return faults.length > 0 ? `${state}: ${faults.join(', ')}` : state;
  }
}

function describeAddress(address: { host: string; port: number } | undefined): string {
  return address ? `${address.host}:${address.port}` : 'off';
}

function toCoreEvent(command: ChargeCommand): CoreEvent {
  return command.kind === 'authorize' ? { type: 'authorize', driverId: command.driverId } : { type: command.kind };
}
