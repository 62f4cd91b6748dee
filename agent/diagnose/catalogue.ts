// What diagnose knows about problems, as data: each kind of problem with its severity, probable
// causes and recommended actions, and the tables that map what the journal says onto those kinds.
// The analysis (analyze.ts) only counts and correlates; a new problem is a new row here.

export type Severity = 'critical' | 'high' | 'medium' | 'low';

export const SEVERITY_ORDER: Severity[] = ['critical', 'high', 'medium', 'low'];

export interface ProblemSpec {
  severity: Severity;
  title: string;
  causes: string[];
  actions: string[];
  /** Seen this often in the period, the problem is one step worse. */
  escalate?: { atCount: number; to: Severity };
}

export const PROBLEMS = {
  watchdog_kill: {
    severity: 'critical',
    title: 'systemd killed the agent: watchdog timeout',
    causes: [
      'the event loop blocked (a synchronous call, a hung driver read, swap thrashing on a small Pi)',
      'a supervised part stopped beating (see watchdog_stalled just before: meter worker, relay supervision)',
      'the machine was overloaded or the SD card stalled I/O for longer than WatchdogSec',
    ],
    actions: [
      'read the lines before the kill: journalctl -u charger-agent --since "<time> -2min" --until "<time>"',
      'check load and memory: uptime; free -m; journalctl -k | grep -i -e oom -e mmc',
      'if a part stalled, check its hardware (RS-485 adapter, GPIO wiring) and its driver errors',
    ],
  },
  restart_loop: {
    severity: 'critical',
    title: 'systemd gave up restarting the agent (start limit hit)',
    causes: ['the agent fails at every start: missing hardware, unreadable config, broken install'],
    actions: ['journalctl -u charger-agent -n 100', 'fix the cause, then: systemctl reset-failed charger-agent && systemctl start charger-agent'],
  },
  config_invalid: {
    severity: 'critical',
    title: 'the agent refused its configuration (exit 78) and stays down',
    causes: [
      'a typo or unknown key in /etc/charger-agent/config.yaml',
      'a bad CHARGER_* value in /etc/charger-agent/env',
      'a GPIO pin missing, or two functions on one line (GPIO_CONFIG)',
      'a TLS or SASL file named in the config that the service user cannot read',
    ],
    actions: ['journalctl -u charger-agent -n 30 (config_invalid names every bad path)', 'fix it, then: systemctl restart charger-agent'],
  },
  start_timeout: {
    severity: 'high',
    title: 'the agent did not become ready in time (no READY=1 within TimeoutStartSec)',
    causes: ['a driver hangs while opening (serial port, GPIO export)', 'the health port cannot be bound'],
    actions: ['journalctl -u charger-agent -b | tail -50', 'check the meter path and GPIO pins in config.yaml'],
  },
  crash: {
    severity: 'high',
    title: 'the agent exited with an error or a signal',
    causes: ['lost hardware (exit non-zero by design: systemd restarts it)', 'an unhandled exception (see unhandled_error)', 'a native module crash (code=dumped)'],
    actions: ['journalctl -u charger-agent -p err', 'coredumpctl list node (if systemd-coredump is installed)'],
    escalate: { atCount: 5, to: 'critical' },
  },
  out_of_memory: {
    severity: 'high',
    title: 'the kernel OOM killer stopped the agent',
    causes: ['too little memory for the Node.js heap', 'a growing in-memory queue while a broker is down'],
    actions: ['free -m; journalctl -k | grep -i oom', 'cap the heap: NODE_OPTIONS=--max-old-space-size=128 in /etc/charger-agent/env'],
  },
  restart: {
    severity: 'medium',
    title: 'systemd restarted the agent',
    causes: ['a watchdog kill or a crash just before (see those problems)'],
    actions: ['look at the reason of each restart above it in the journal'],
    escalate: { atCount: 5, to: 'high' },
  },
  component_stalled: {
    severity: 'high',
    title: 'a supervised part stopped beating: watchdog pings withheld',
    causes: ['the meter worker hangs on the serial port', 'the relay supervision loop stopped'],
    actions: ['check the part named in "stalled"', 'expect a watchdog kill and restart if it does not recover'],
  },
  unhandled_error: {
    severity: 'high',
    title: 'unhandled error in the agent',
    causes: ['a bug: an exception nobody caught'],
    actions: ['journalctl -u charger-agent -p err -o cat | grep unhandled_error', 'report it with the line and the version'],
  },
  fault_relay_welded: {
    severity: 'critical',
    title: 'fault: contactor welded (closed while commanded open)',
    causes: ['contacts welded by switching under load or inrush', 'a worn contactor', 'feedback contact miswired or stuck'],
    actions: [
      'take the charge point out of service and isolate it upstream: the vehicle may still be live',
      'have an electrician check and replace the contactor, then test the feedback contact',
      'reset the fault only after the repair',
    ],
  },
  fault_relay_failure: {
    severity: 'high',
    title: 'fault: contactor did not close when commanded',
    causes: ['no coil supply or a failed relay driver', 'feedback contact not wired or broken', 'feedbackTimeoutMs too short for this contactor'],
    actions: ['check coil voltage and driver output when closing', 'check the feedback wiring', 'compare with charging.feedbackTimeoutMs'],
  },
  fault_meter_stale: {
    severity: 'high',
    title: 'fault: the meter went silent during a charge',
    causes: ['RS-485 wiring or termination', 'meter unpowered', 'wrong unit id, baud or parity'],
    actions: ['see the meter outages below', 'check A/B wiring and the 120 ohm termination'],
  },
  fault_emergency_stop: {
    severity: 'high',
    title: 'fault: emergency stop',
    causes: ['the emergency stop was pressed', 'its circuit opened (broken wire, loose terminal)'],
    actions: ['find out who pressed it and why', 'check the e-stop loop if nobody did', 'release it and reset the fault'],
  },
  fault_hardware_fault: {
    severity: 'high',
    title: 'fault: hardware (GPIO) failure',
    causes: ['a GPIO line could not be read or written', 'sysfs GPIO export failed (permissions, pin in use)'],
    actions: ['journalctl -u charger-agent | grep gpio_', 'check the pins in config.yaml against the wiring'],
  },
  fault_other: {
    severity: 'high',
    title: 'fault raised',
    causes: ['see the fault code'],
    actions: ['journalctl -u charger-agent | grep fault_raised'],
  },
  meter_outage: {
    severity: 'high',
    title: 'the energy meter stopped answering',
    causes: ['RS-485 wiring, termination or adapter (USB unplugged, /dev/ttyUSB0 renumbered)', 'meter unpowered', 'wrong serial settings'],
    actions: [
      'ls -l /dev/serial/by-id/ and use a stable path as meter.path',
      'check A/B polarity, the termination and the meter address',
      'charging cannot be billed while the meter is down',
    ],
  },
  meter_breaker_open: {
    severity: 'high',
    title: 'meter reconnects paused by the circuit breaker',
    causes: ['the port was reopened too often in an hour: the link keeps failing'],
    actions: ['fix the link (see meter outages); the breaker closes by itself after meter.breakerPauseMs'],
  },
  meter_qos_critical: {
    severity: 'high',
    title: 'meter link quality critical (under 50% good answers)',
    causes: ['noise on the RS-485 line', 'a second master on the bus', 'baud rate at the edge of the cable length'],
    actions: ['check the cable, the shield and the termination', 'lower the baud rate on meter and agent'],
  },
  meter_qos_degraded: {
    severity: 'medium',
    title: 'meter link quality degraded (50-89% good answers)',
    causes: ['occasional CRC errors or timeouts: noise, termination, timeoutMs too short'],
    actions: ['compare errors by kind in meter_qos', 'raise meter.timeoutMs or fix the wiring'],
  },
  broker_outage_kafka: {
    severity: 'medium',
    title: 'Kafka unreachable: telemetry kept in the local outbox',
    causes: ['network or uplink down', 'broker down or restarted', 'TLS/SASL settings rejected'],
    actions: ['check the uplink; kafka_down says the error', 'watch the backlog below; it drains by itself once the broker is back'],
    escalate: { atCount: 10, to: 'high' },
  },
  broker_outage_mqtt: {
    severity: 'low',
    title: 'MQTT unreachable: dashboards miss live data',
    causes: ['network down', 'broker down', 'credentials rejected'],
    actions: ['check the broker and mqtt.url; Kafka telemetry is not affected'],
  },
  outbox_backlog: {
    severity: 'medium',
    title: 'telemetry backlog in the local outbox',
    causes: ['a broker outage', 'an uplink slower than the telemetry rate'],
    actions: ['find the broker outage above', 'the outbox drains by itself; check store.maxBytes if it keeps growing'],
  },
  telemetry_dropped: {
    severity: 'high',
    title: 'telemetry dropped: the outbox was full',
    causes: ['a long broker outage exceeded store.maxBytes'],
    actions: ['restore the broker link', 'raise store.maxBytes if the SD card has room'],
  },
  store_error: {
    severity: 'high',
    title: 'the local store failed',
    causes: ['SD card full or failing', 'a read-only file system after I/O errors'],
    actions: ['df -h /var/lib/charger-agent; journalctl -k | grep -i -e mmc -e ext4', 'replace a failing SD card'],
  },
  engine_failure: {
    severity: 'high',
    title: 'the monitor saw the engine fail (ENGINE_FAILURE reported)',
    causes: ['the agent was down or not answering STATUS? (see restarts)', 'the health port is blocked or overloaded'],
    actions: ['compare with the agent restarts and watchdog kills', 'echo "STATUS?" | nc 127.0.0.1 5001'],
  },
  sd_notify_failed: {
    severity: 'medium',
    title: 'the agent could not notify systemd',
    causes: ['systemd-notify missing or NotifyAccess too strict in a local drop-in'],
    actions: ['systemctl cat charger-agent (NotifyAccess=all)', 'command -v systemd-notify'],
  },
  relay_force_open_failed: {
    severity: 'critical',
    title: 'after the agent ended, relay-safe (ExecStopPost) could not drive the relay line open',
    causes: [
      'gpio.relay in config.yaml is written in a way relay-safe does not read (anchors, aliases, lists) or names no line of this board',
      'neither sysfs GPIO nor the gpiod tools for the character device (apt install gpiod)',
      'no permission on /sys/class/gpio or /dev/gpiochip* for the service user',
    ],
    actions: [
      'make sure the contactor is open now (its feedback contact, or measure the coil)',
      'journalctl -u charger-agent -g relay_force_open (the line says what each path answered)',
      'sudo -u charger-agent /usr/bin/node /opt/charger-agent/dist/agent/cli.js relay-safe --check --config /etc/charger-agent/config.yaml',
    ],
  },
  heartbeat_stalled: {
    severity: 'high',
    title: 'the dead-man output stopped while the relay was meant to be closed: the contactor may have dropped mid-charge',
    causes: ['the event loop was blocked for the gap heartbeat_gap reports (CPU starvation, a synchronous call, SD card stalls)', 'writing the heartbeat line failed (heartbeat_failed)'],
    actions: ['journalctl -u charger-agent -g "heartbeat_(gap|failed)"', 'compare gap_ms with the hold time of the dead-man circuit; check load and I/O: uptime; journalctl -k | grep -i mmc'],
  },
  health_clients_rejected: {
    severity: 'low',
    title: 'health port clients rejected',
    causes: ['too many connections at once', 'commands from a peer outside health.allowedPeers'],
    actions: ['check which peer; adjust health.maxConnections or health.allowedPeers'],
  },
} satisfies Record<string, ProblemSpec>;

export type ProblemKind = keyof typeof PROBLEMS;

/** systemd's "Failed with result '…'" → the problem it is. */
export const FAILURE_RESULTS: Record<string, ProblemKind> = {
  watchdog: 'watchdog_kill',
  'exit-code': 'crash',
  signal: 'crash',
  'core-dump': 'crash',
  timeout: 'start_timeout',
  'start-limit-hit': 'restart_loop',
  'oom-kill': 'out_of_memory',
  resources: 'crash',
};

/** The exit status that means "bad configuration" (EX_CONFIG, RestartPreventExitStatus=78). */
export const CONFIG_EXIT_STATUS = 78;

/** Our log events that are a problem each time they appear. */
export const EVENT_PROBLEMS: Record<string, ProblemKind> = {
  watchdog_stalled: 'component_stalled',
  unhandled_error: 'unhandled_error',
  config_invalid: 'config_invalid',
  meter_breaker_open: 'meter_breaker_open',
  outbox_dropped: 'telemetry_dropped',
  store_error: 'store_error',
  sd_notify_failed: 'sd_notify_failed',
  health_client_rejected: 'health_clients_rejected',
  relay_force_open_failed: 'relay_force_open_failed',
  heartbeat_gap: 'heartbeat_stalled',
  heartbeat_failed: 'heartbeat_stalled',
};

/** Links whose outages are logged as down / still down / up (agent/logging/outage-log.ts). */
export interface OutageLink {
  link: string;
  down: string;
  still?: string;
  up: string;
  /** The field of the up (and still-down) line that says how long the link was down. */
  downMsField: string;
  problem: ProblemKind;
}

export const OUTAGE_LINKS: OutageLink[] = [
  { link: 'meter', down: 'meter_down', still: 'meter_still_down', up: 'meter_up', downMsField: 'down_ms', problem: 'meter_outage' },
  { link: 'kafka', down: 'kafka_down', still: 'kafka_still_down', up: 'kafka_up', downMsField: 'down_ms', problem: 'broker_outage_kafka' },
  { link: 'mqtt', down: 'mqtt_down', still: 'mqtt_still_down', up: 'mqtt_up', downMsField: 'down_ms', problem: 'broker_outage_mqtt' },
  { link: 'engine', down: 'engine_failure', up: 'engine_recovered', downMsField: 'outage_ms', problem: 'engine_failure' },
];

/** Lines that begin or end a process of the agent: what it knew about its links ends with it. */
export const PROCESS_BOUNDARY_EVENTS = ['agent_started', 'agent_stopped'];

/** fault_raised{fault} → its problem; unknown codes are fault_other. */
export function faultProblem(fault: string): ProblemKind {
  const kind = `fault_${fault}`;
  return kind in PROBLEMS ? (kind as ProblemKind) : 'fault_other';
}

/** Meter success-rate classes (DESIGN: healthy >= 90%, degraded 50-89%, critical 1-49%, down 0%). */
export const QOS_CLASSES: Array<{ qosClass: string; minRate: number; problem?: ProblemKind }> = [
  { qosClass: 'healthy', minRate: 0.9 },
  { qosClass: 'degraded', minRate: 0.5, problem: 'meter_qos_degraded' },
  { qosClass: 'critical', minRate: Number.MIN_VALUE, problem: 'meter_qos_critical' },
  { qosClass: 'down', minRate: 0, problem: 'meter_qos_critical' },
];

/**
 * The fields of our events that diagnose reads, as the agent logs them:
 *   fault_raised { fault }    meter_qos { qos, previous, success_rate 0..1 } (on each class change)
 *   outbox_backlog { depth, oldest_age_ms }    outbox_dropped { count }
 *   <link>_up { down_ms, failures }    engine_recovered { outage_ms }    watchdog_stalled { stalled }
 */
export const EVENT_FIELDS = {
  fault: 'fault',
  successRate: 'success_rate',
  qosClass: 'qos',
  previousQosClass: 'previous',
  backlogDepth: 'depth',
  backlogOldestAgeMs: 'oldest_age_ms',
  dropped: 'count',
  stalled: 'stalled',
} as const;
