import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { promtoolCheckMetrics } from './promtool.js';

/** /metrics text passes `promtool check metrics` with no lint problem; without promtool it fails on CI and skips elsewhere. */
export async function assertPromtoolClean(t: TestContext, text: string): Promise<void> {
  const result = await promtoolCheckMetrics(text);
  if (!result.available) {
    if (process.env.CI === 'true') assert.fail('promtool is not installed (apt-get install prometheus): CI must lint /metrics');
    t.skip('promtool not installed (Debian package prometheus)');
    return;
  }
  assert.equal(result.output, '', 'no lint problems');
  assert.equal(result.exitCode, 0);
}
