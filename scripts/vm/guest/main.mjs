// The VM suite inside the guest (charger-vm-check.service, under systemd as PID 1): reads
// /vm-run/instructions.json, runs the checks it names, writes /vm-run/results.json as it goes.
// The host (test/vm/) asserts the results; this file only measures and records.
import { readFileSync } from 'node:fs';
import { log, Results, run, RUN, uptimeS } from './lib.mjs';
import { checkSuite } from './checks.mjs';
import { powerCutRound } from './power-cut.mjs';

const instructions = JSON.parse(readFileSync(`${RUN}/instructions.json`, 'utf8'));
const results = new Results(instructions.results ?? 'results.json', { bootS: uptimeS(), mode: instructions.mode });
log(`mode ${instructions.mode}, booted in ${results.data.bootS} s`);
// where the boot's time went (guest clock, seconds since the kernel started)
const timeline = await run('/bin/journalctl', ['-b', '-o', 'short-monotonic', '--no-pager', '-g', 'vm-init|Run /init|Freeing initrd|Reached target|Starting charger-vm-check']);
results.data.bootTimeline = timeline.stdout.split('\n').filter(Boolean).map((line) => line.replace(/^\[\s*([\d.]+)\] \S+ /, '$1 '));
results.save();
try {
  if (instructions.mode === 'checks') await checkSuite(results, instructions);
  else if (instructions.mode === 'power-cut') await powerCutRound(results, instructions);
  else throw new Error(`unknown mode ${instructions.mode}`);
} catch (error) {
  results.data.error = String(error?.stack ?? error);
}
if (results.data.error || Object.values(results.data.checks).some((check) => !check.ok)) {
  // what the agent said, for the host's failure message
  const tail = await run('/bin/journalctl', ['-u', 'charger-agent', '-n', '80', '-o', 'short-monotonic', '--no-pager']);
  results.data.agentJournalTail = tail.stdout.split('\n');
}
results.data.done = true;
results.data.endS = uptimeS();
results.save();
log('done');
process.exit(0);
