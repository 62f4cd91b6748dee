// Protocol lines to the charge point: STATUS?/HEALTH_CHECK, INFO and the commands, answered in the
// wire format of commands.ts. The same dispatch serves the TCP port and the MQTT command topics.
// SIM# lines reach the simulated hardware only when there is some: the production path has none.
import type { ChargeCommand, ChargePoint } from '../charge-point.js';
import type { Logger } from '../logging/logger.js';
import { LOG_EVENTS } from '../logging/events.js';
import type { HardwareSimulation } from '../../drivers/sim/simulation.js';
import { REPLY, WIRE_NAME, ack, nack, parseRequest, type Request } from './commands.js';
import { formatInfo } from './info.js';

export interface ProtocolDispatchOptions {
  chargePoint: ChargePoint;
  log: Logger;
  /** Only for simulated hardware: SIM# lines drive it. Without it they answer NACK#SIM#NOT_SIMULATED. */
  simulation?: HardwareSimulation;
}

export interface ProtocolDispatch {
  /** Answers one parsed request; `peer` names who asked (an address, "mqtt", "demo"). */
  handle(request: Request, peer: string): string;
  handleLine(line: string, peer: string): string;
}

type CommandKind = ChargeCommand['kind'];

export function createProtocolDispatch(options: ProtocolDispatchOptions): ProtocolDispatch {
  const { chargePoint, log, simulation } = options;

  const command = (kind: CommandKind, request: ChargeCommand, peer: string): string => {
    const result = chargePoint.command(request, peer);
    return result.accepted ? ack(kind) : nack(WIRE_NAME[kind], result.reason);
  };

  const inject = (injection: string, args: string[], peer: string): string => {
    const name = [injection, ...args].join('#').toUpperCase();
    if (!simulation) return nack(WIRE_NAME.sim, 'NOT_SIMULATED');
    const error = simulation.inject(injection, args);
    log.info(LOG_EVENTS.commandReceived, { command: 'sim', injection: name, peer, accepted: !error, reason: error });
    return error ? nack(WIRE_NAME.sim, error) : `ACK#${WIRE_NAME.sim}#${name}`;
  };

  const handle = (request: Request, peer: string): string => {
    switch (request.kind) {
      case 'status':
        return chargePoint.healthCheck() ? 'OK' : 'KO';
      case 'info':
        return JSON.stringify(formatInfo(chargePoint.snapshot()));
      case 'authorize':
        return command('authorize', { kind: 'authorize', driverId: request.driverId }, peer);
      case 'stop':
      case 'resume':
      case 'reset':
        return command(request.kind, { kind: request.kind }, peer);
      case 'sim':
        return inject(request.injection, request.args, peer);
      default:
        return REPLY.unknown;
    }
  };

  return { handle, handleLine: (line, peer) => handle(parseRequest(line), peer) };
}
