import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './load.js';

function configFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'charger-config-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('runs on defaults alone', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.health.port, 5001);
    assert.equal(config.pricePerKwh, 0.2);
    assert.deepEqual(config.kafka.brokers, []);
    assert.equal(config.mqtt.url, '');
    assert.equal(config.charging.authorizationTimeoutS, 60);
  });

  it('takes a YAML file with comments, then env, then flags, each overriding the one before', () => {
    const file = configFile('# the bench charger\ncpId: CP-FILE\nhealth:\n  port: 6000 # moved\npricePerKwh: 0.3\n');
    const config = loadConfig({
      file,
      env: { CHARGER_HEALTH_PORT: '6001', CHARGER_CP_ID: 'CP-ENV' },
      flags: { 'cp-id': 'CP-FLAG' },
    });
    assert.equal(config.cpId, 'CP-FLAG');
    assert.equal(config.health.port, 6001);
    assert.equal(config.pricePerKwh, 0.3);
  });

  it('reads a comma list of Kafka brokers, and an empty string turns Kafka off', () => {
    assert.deepEqual(loadConfig({ env: {}, flags: { 'kafka-brokers': 'a:9092, b:9093' } }).kafka.brokers, ['a:9092', 'b:9093']);
    assert.deepEqual(loadConfig({ env: { CHARGER_KAFKA_BROKERS: 'a:1' }, flags: { 'kafka-brokers': '' } }).kafka.brokers, []);
  });

  it('reports every bad field at once, with its path, what was expected and where it came from', () => {
    const file = configFile('cpId: "bad id"\nhealth:\n  port: 70000\n  prot: 5\ntypo: 1\nmeter:\n  model: sdm999\n');
    const problems = problemsOf(() => loadConfig({ file, env: { CHARGER_PRICE_PER_KWH: 'cheap' } }));
    assert.equal(problems.length, 6, problems.join('\n'));
    const text = problems.join('\n');
    assert.match(text, /CHARGER_PRICE_PER_KWH: expected a number, got "cheap"/);
    assert.match(text, /cpId: .*letters, digits/);
    assert.match(text, /health\.port: .*65535.*\(from .*config\.yaml\)/);
    assert.match(text, /health: unknown setting "prot"/);
    assert.match(text, /\(top level\): unknown setting "typo"/);
    assert.match(text, /meter\.model: .*sdm630/);
  });

  it('names the flag a bad value came from', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, flags: { 'health-port': '-1' } }));
    assert.match(problems[0] ?? '', /health\.port: .* \(from --health-port\)/);
  });

  it('rejects a YAML syntax error, a missing file and a non-mapping file', () => {
    assert.match(problemsOf(() => loadConfig({ env: {}, file: configFile('health: [unclosed\n') }))[0] ?? '', /config\.yaml: /);
    assert.match(problemsOf(() => loadConfig({ env: {}, file: '/nonexistent/charger.yaml' }))[0] ?? '', /ENOENT/);
    assert.match(problemsOf(() => loadConfig({ env: {}, file: configFile('- a\n- b\n') }))[0] ?? '', /mapping/);
  });

  it('rejects an allowed peer that is not an address or CIDR', () => {
    const file = configFile('health:\n  allowedPeers: ["127.0.0.0/8", "10.0.0.0/33", "localhost"]\n');
    const problems = problemsOf(() => loadConfig({ env: {}, file }));
    assert.deepEqual(problems, [
      'health.allowedPeers.1: "10.0.0.0/33" is not an IP address or CIDR',
      'health.allowedPeers.2: "localhost" is not an IP address or CIDR',
    ]);
  });

  it('takes the config file from CHARGER_CONFIG', () => {
    const file = configFile('cpId: CP-ENVFILE\n');
    assert.equal(loadConfig({ env: { CHARGER_CONFIG: file } }).cpId, 'CP-ENVFILE');
  });
});
