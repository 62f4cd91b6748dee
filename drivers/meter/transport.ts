// The byte pipe under the Modbus client and the meter simulator: serialport in production, a pty
// pair in hardware-in-the-loop tests, an in-memory pair in unit tests.

export interface SerialTransport {
  /** Where the bytes go, for messages: /dev/ttyUSB0, memory:a. */
  readonly path: string;
  readonly isOpen: boolean;
  /** Rejects with a DriverError saying how to fix the cause (missing device, dialout group …). */
  open(): Promise<void>;
  /** Safe to call when already closed. */
  close(): Promise<void>;
  /** Resolves once the bytes have left the process; rejects with a DriverError (kind io). */
  write(bytes: Uint8Array): Promise<void>;
  /** Returns an unsubscribe function. */
  onData(listener: (bytes: Uint8Array) => void): () => void;
  /** Called when the port closes, with the error when it was lost (device unplugged). */
  onClose(listener: (error?: Error) => void): () => void;
}

/** Listeners of one event, each removable by the function `add` returns. */
export class Listeners<T extends unknown[]> {
  private readonly set = new Set<(...args: T) => void>();

  add(listener: (...args: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  emit(...args: T): void {
    for (const listener of [...this.set]) listener(...args);
  }
}
