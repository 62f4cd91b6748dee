// The serialport adapter: the only file that imports serialport. Opening errors become DriverErrors
// that say what to do (plug the adapter in, join the dialout group, stop the other program).
import { SerialPort } from 'serialport';
import { DriverError } from '../types.js';
import { Listeners, type SerialTransport } from './transport.js';

export interface SerialLineSettings {
  path: string;
  baud: number;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
}

/** A DriverError with the fix for an error serialport gave when opening path. */
export function openError(path: string, error: Error): DriverError {
  const text = `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`;
  if (/ENOENT|No such file/i.test(text)) {
    return new DriverError('METER_PORT_MISSING', `${path} does not exist: check that the RS-485 adapter is plugged in (ls -l /dev/serial/by-id/) and that meter.path names it`, { kind: 'io', path });
  }
  if (/EACCES|Permission denied/i.test(text)) {
    return new DriverError(
      'METER_PORT_ACCESS',
      `permission denied on ${path}: add the service user to the dialout group (sudo usermod -aG dialout <user>, or SupplementaryGroups=dialout in the unit) and restart`,
      { kind: 'io', path },
    );
  }
  if (/EBUSY|lock|Resource temporarily unavailable/i.test(text)) {
    return new DriverError('METER_PORT_BUSY', `${path} is in use by another program (find it with: fuser -v ${path}; ModemManager and serial-getty are usual suspects)`, { kind: 'io', path });
  }
  return new DriverError('METER_PORT_OPEN_FAILED', `cannot open ${path}: ${error.message}`, { kind: 'io', path });
}

export class SerialPortTransport implements SerialTransport {
  private port: SerialPort | undefined;
  private readonly data = new Listeners<[Uint8Array]>();
  private readonly closed = new Listeners<[Error | undefined]>();

  constructor(private readonly settings: SerialLineSettings) {}

  get path(): string {
    return this.settings.path;
  }

  get isOpen(): boolean {
    return this.port?.isOpen ?? false;
  }

  async open(): Promise<void> {
    if (this.port?.isOpen) return;
    const { path, baud, parity, stopBits } = this.settings;
    const port = new SerialPort({ path, baudRate: baud, parity, stopBits, dataBits: 8, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(openError(path, error)) : resolve())));
    port.on('data', (chunk: Buffer) => this.data.emit(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    port.on('close', (error?: Error) => this.closed.emit(error ?? undefined));
    port.on('error', () => undefined); // failures reach the caller through write() and 'close'
    this.port = port;
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  async write(bytes: Uint8Array): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) throw new DriverError('METER_IO', `cannot write to ${this.path}: the port is closed`, { kind: 'io', path: this.path });
    await new Promise<void>((resolve, reject) => {
      port.write(Buffer.from(bytes), (error) => {
        if (error) return reject(new DriverError('METER_IO', `writing to ${this.path} failed: ${error.message}`, { kind: 'io', path: this.path }));
        // drain: the request has left the UART, so the answer deadline starts from the wire.
        port.drain((drainError) => (drainError ? reject(new DriverError('METER_IO', `draining ${this.path} failed: ${drainError.message}`, { kind: 'io', path: this.path })) : resolve()));
      });
    });
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    return this.data.add(listener);
  }

  onClose(listener: (error?: Error) => void): () => void {
    return this.closed.add(listener);
  }
}
