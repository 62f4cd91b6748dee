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
      `health.allowedPeers.1: "10.0.0.0/33" is not an IP address or CIDR (from ${file})`,
      `health.allowedPeers.2: "localhost" is not an IP address or CIDR (from ${file})`,
    ]);
  });

  it('reports a bad port and a bad CIDR in one run: the schema does not hide the checks across settings', () => {
    const file = configFile('health:\n  port: 70000\n  allowedPeers: ["10.0.0.0/33"]\n');
    const problems = problemsOf(() => loadConfig({ env: {}, file }));
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /^health\.port: .*65535/);
    assert.match(problems[1]!, /^health\.allowedPeers\.0: "10\.0\.0\.0\/33" is not an IP address or CIDR/);
  });

  it('rejects two functions on one GPIO line, over every pin of the gpio section, by chip and line or by sysfs number', () => {
    const file = configFile(
      [
        'gpio:',
        '  relay: { chip: pinctrl-rp1, line: 17 }',
        '  plugPresent: { chip: pinctrl-rp1, line: 17 }',
        '  emergencyStop: { sysfs: 600 }',
        '  relayFeedback: { sysfs: 600, activeLow: true }',
        '  debounceMs: 20',
      ].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ env: {}, file }));
    assert.deepEqual(problems, [
      `gpio.plugPresent: is line 17 of pinctrl-rp1, as gpio.relay is: give each function its own line (from ${file})`,
      `gpio.relayFeedback: is sysfs GPIO 600, as gpio.emergencyStop is: give each function its own line (from ${file})`,
    ]);
    const distinct = configFile('gpio:\n  relay: { chip: pinctrl-rp1, line: 17 }\n  plugPresent: { chip: pinctrl-rp1, line: 27 }\n');
    assert.equal(loadConfig({ env: {}, file: distinct }).gpio.plugPresent?.line, 27);
  });

  it('names TLS and SASL files that cannot be read, and SASL settings that are missing, only where they are used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'charger-files-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'PEM');
    const used = configFile(
      [
        'kafka:',
        '  brokers: [k:9093]',
        `  tls: { enabled: true, caFile: ${ca}, certFile: ${join(dir, 'missing.pem')}, keyFile: ${dir} }`,
        '  sasl: { mechanism: scram-sha-512, passwordFile: /nonexistent/kafka-password }',
        'mqtt:',
        '  url: mqtt://127.0.0.1:1883',
        '  passwordFile: /nonexistent/mqtt-password',
      ].join('\n'),
    );
    const text = problemsOf(() => loadConfig({ env: {}, file: used })).join('\n');
    assert.match(text, /kafka\.tls\.certFile: cannot read .*missing\.pem \(ENOENT\)/);
    assert.match(text, /kafka\.tls\.keyFile: .* is not a file/);
    assert.doesNotMatch(text, /kafka\.tls\.caFile/);
    assert.match(text, /kafka\.sasl\.username: is required with kafka\.sasl\.mechanism scram-sha-512/);
    assert.match(text, /kafka\.sasl\.passwordFile: cannot read \/nonexistent\/kafka-password \(ENOENT\)/);
    assert.match(text, /mqtt\.passwordFile: cannot read \/nonexistent\/mqtt-password \(ENOENT\)/);
    const unused = configFile('kafka:\n  tls: { enabled: false, caFile: /nonexistent/ca.pem }\nmqtt:\n  passwordFile: /nonexistent/p\n');
    assert.equal(loadConfig({ env: {}, file: unused }).kafka.tls.caFile, '/nonexistent/ca.pem');
  });

  it('takes the config file from CHARGER_CONFIG', () => {
    const file = configFile('cpId: CP-ENVFILE\n');
    assert.equal(loadConfig({ env: { CHARGER_CONFIG: file } }).cpId, 'CP-ENVFILE');
  });
});
