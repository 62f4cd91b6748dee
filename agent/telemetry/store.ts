// The local store's public face: the main-thread client (store/client.ts) over the worker thread that
// owns the SQLite database (store/worker.ts). See store/client.ts for what reaches the disk and when.
export { openTelemetryStore, type Appended, type TelemetryStore } from './store/client.js';
export { readLedger, storePath } from './store/opening.js';
export {
  STORE_FILE,
  type ClosedWith,
  type FinalReading,
  type InterruptedSession,
  type LedgerSession,
  type OutboxEntry,
  type StoreOptions,
  type StoreStats,
} from './store/types.js';
