// A middle point for the health-check benchmark: the agent's own protocol server
// (agent/protocol/health-server.ts, its defences included) answering OK to every STATUS? without
// the controller behind it. Between the ceiling (ok-server.ts) and the whole agent it shows where
// the time goes. Prints {"port":N} once listening on a free loopback port; runs until killed.
import { createLogger } from '../../agent/logging/logger.js';
import { HealthServer } from '../../agent/protocol/health-server.js';

const server = new HealthServer({
  host: '127.0.0.1',
  port: 0,
  allowedPeers: ['127.0.0.0/8'],
  maxConnections: 64,
  idleTimeoutMs: 30_000,
  log: createLogger({ write: () => undefined }),
  handle: () => 'OK',
});

server.start().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + '\n'),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
