// `charger-agent run --hardware pi` on a fake sysfs tree: the real run command (config, signals,
// crash handlers, exit codes), the real controller and the real pi-hardware wiring (relay driven
// open first, inputs, heartbeat), with one thing swapped: the line transport is plain files under
// gpio.sysfsRoot (drivers/gpio/fake-sysfs.ts) instead of onoff, which only knows /sys/class/gpio and
// needs interrupts a regular file cannot give. The meter is the simulator.
// Run as: node --import tsx test/support/fake-sysfs-agent.ts run --config FILE [run flags]
import { parseArgs } from 'node:util';
import { loadConfig } from '../../agent/config/load.js';
import { runRunCommand } from '../../agent/cli/run-command.js';
import type { HardwareSetup } from '../../agent/hardware.js';
import { createLogger } from '../../agent/logging/logger.js';
import { fileLineOpener } from '../../drivers/gpio/testing/fake-sysfs.js';
import { createPiGpio } from '../../drivers/gpio/pi-hardware.js';
import { createSimHardware } from '../../drivers/sim/sim-hardware.js';

const [command, ...argv] = process.argv.slice(2);
if (command !== 'run') throw new Error('usage: fake-sysfs-agent.ts run --config FILE [run flags]');
const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: false });
const config = loadConfig({ file: values.config as string, flags: {}, env: {} });
const log = createLogger();
const gpio = createPiGpio(config.gpio, log, { openLine: fileLineOpener(config.gpio.sysfsRoot) });
const simMeter = createSimHardware({ ...config.sim, meterTimeoutMs: config.meter.timeoutMs }).simMeter;
const hardware: HardwareSetup = {
  kind: 'pi',
  hardware: { ...gpio, release: async () => gpio.release() },
  createMeter: () => simMeter,
  meterLabel: 'simulated meter',
};
process.exit(await runRunCommand(argv, { hardware }));
