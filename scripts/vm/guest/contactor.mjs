// The contactor of the virtual charge point, in a process of its own at real-time priority
// (device.mjs starts it with chrt): its auxiliary contact (the feedback line's pull) follows its coil
// (the relay line's value), checked every millisecond. A contactor has no event loop to wait for; in
// the busy emulated guest the checks' own process could be late by more than the agent's 500 ms
// feedback limit, which the agent would rightly report as a contactor that did not close.
//   node contactor.mjs SIM_DIR RELAY_LINE FEEDBACK_LINE
// Prints "ready" once it follows, then one line per change: the coil's level and how long after the
// previous check it was seen (the follower's own lag).
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [dir, relayLine, feedbackLine] = process.argv.slice(2);
const coil = `${dir}/sim_gpio${relayLine}/value`;
const contact = `${dir}/sim_gpio${feedbackLine}/pull`;
let closed;
let lastCheck = performance.now();
function follow() {
  const now = performance.now();
  const value = readFileSync(coil, 'utf8').trim() === '1';
  if (value !== closed) {
    writeFileSync(contact, value ? 'pull-up' : 'pull-down');
    if (closed !== undefined) process.stdout.write(`${value ? 'closed' : 'open'} lag_ms=${(now - lastCheck).toFixed(1)}\n`);
    closed = value;
  }
  lastCheck = now;
}
follow();
setInterval(follow, 1);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
