#!/usr/bin/env node
// Launcher behind package.json "bin": runs the compiled daemon (dist/) when it was built,
// otherwise the TypeScript sources through tsx, so `npx charger-agent` works right after `npm ci`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/agent/cli.js', import.meta.url);
const source = new URL('./cli.ts', import.meta.url);
const preferSource = existsSync(fileURLToPath(source)) && process.env.CHARGER_AGENT_USE_DIST !== '1';

if (preferSource) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(compiled.href);
}
