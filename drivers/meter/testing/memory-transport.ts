// Two SerialTransports joined back to back, for unit tests: what one side writes, the other
// receives on a later turn of the event loop, as from a real port. Tests can also push bytes in.
import { DriverError } from '../../types.js';
import { Listeners, type SerialTransport } from '../transport.js';

export class MemoryTransport implements SerialTransport {
  peer: MemoryTransport | undefined;
  /** Every write, in order, for assertions. */
  readonly writes: Uint8Array[] = [];
  /** When set, open() rejects with this error (a missing or locked device). */
  openError: Error | undefined;
  private open_ = false;
  private readonly data = new Listeners<[Uint8Array]>();
  private readonly closed = new Listeners<[Error | undefined]>();

  constructor(readonly path: string) {}

  get isOpen(): boolean {
    return this.open_;
  }

  async open(): Promise<void> {
    if (this.openError) throw this.openError;
    this.open_ = true;
  }

  async close(): Promise<void> {
    if (!this.open_) return;
    this.open_ = false;
    this.closed.emit(undefined);
  }

  /** The port is lost, as when a USB adapter is unplugged. */
  lose(error = new Error('device disconnected')): void {
    if (!this.open_) return;
    this.open_ = false;
    this.closed.emit(error);
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (!this.open_) throw new DriverError('METER_IO', `cannot write to ${this.path}: the port is closed`, { kind: 'io' });
    const copy = bytes.slice();
    this.writes.push(copy);
    const peer = this.peer;
    if (peer) setImmediate(() => peer.receive(copy));
  }

  /** Delivers bytes to this side's listeners as if they came over the wire. */
  receive(bytes: Uint8Array): void {
    if (this.open_) this.data.emit(bytes.slice());
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    return this.data.add(listener);
  }

  onClose(listener: (error?: Error) => void): () => void {
    return this.closed.add(listener);
  }
}

/** [client side, server side]: plug the Modbus client into the first and the simulator into the second. */
export function createTransportPair(): [MemoryTransport, MemoryTransport] {
  const a = new MemoryTransport('memory:a');
  const b = new MemoryTransport('memory:b');
  a.peer = b;
  b.peer = a;
  return [a, b];
}
