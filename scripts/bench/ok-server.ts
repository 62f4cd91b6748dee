// The ceiling for the health-check benchmark: the least a Node TCP server can do for the same
// protocol — one "OK\n" written for every line received, nothing else. Prints {"port":N} once
// listening on a free loopback port; runs until killed.
import { createServer } from 'node:net';

const REPLY = Buffer.from('OK\n');
const NEWLINE = 0x0a;

const server = createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk: Buffer) => {
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) socket.write(REPLY);
  });
  socket.on('error', () => socket.destroy());
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(JSON.stringify({ port: address.port }) + '\n');
});
