#!/usr/bin/env bash
# `npm run bench`: the performance figures of the README (not part of `npm test`).
#
#   npm run bench                   full run, about 30 minutes on a 2-core box
#   BENCH_QUICK=1 npm run bench     smoke run, a few minutes: shorter windows, fewer trials
#   BENCH_ONLY=slow-storage npm run bench
#                                   one part alone (about 5 minutes for slow-storage), merged into an
#                                   existing .bench/results.json (a new one if none: the other parts
#                                   read "not run"); also health-checks, fault-reaction, meter-link,
#                                   fleet, or several comma-separated. Starts one set of brokers only.
#
# Builds the compiled agent (npm run build) and the C load client (gcc, into .bench/), starts two
# sets of test brokers (scripts/test-services.sh: Kafka 3.9.1 + Mosquitto on free loopback ports,
# in run dirs of their own, so brokers other work is using are never touched; the second Kafka is
# the one the outage benchmark stops and restarts), runs scripts/bench/run.ts, and stops the brokers
# it started whatever happens. Output: a table on stdout, .bench/results.json and
# .bench/README-performance.md (the README's Performance section).
#
# Knobs (env): BENCH_QUICK, BENCH_IDLE_MIN, BENCH_CHARGE_MIN, BENCH_OUTAGE_MIN, BENCH_FAULT_TRIALS,
# BENCH_HEALTH_RUNS, BENCH_HEALTH_SECONDS, BENCH_HEALTH_CONNECTIONS, BENCH_STARTUP_RUNS,
# BENCH_METER_READS, BENCH_FLEET_STEPS (e.g. 4,8,16,32), BENCH_FLEET_WINDOW_S, BENCH_SKIP_BUILD=1,
# BENCH_SLOW_STALLS_MS (fsync stalls of the slow-SD-card part, default 0,500,2000; 0 = normal fsync),
# BENCH_SLOW_ESTOPS (e-stops timed per stall, default 30), BENCH_ONLY (above).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench: %s\n' "$*" >&2; }

[ -d node_modules ] || npm ci

if ! command -v gcc >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing gcc (Debian) for the load client"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >&2
  else
    log "ERROR: gcc is needed to build the load client: sudo apt-get install gcc"
    exit 1
  fi
fi

mkdir -p .bench
if [ "${BENCH_SKIP_BUILD:-}" != "1" ]; then
  log "building the agent (npm run build)"
  npm run --silent build
fi
log "building the load client (.bench/tcp-load)"
gcc -O2 -Wall -Wextra -o .bench/tcp-load scripts/bench/tcp-load.c

run_base="${TMPDIR:-/tmp}/charger-agent-bench-$$"
shared_dir="$run_base-shared"
outage_dir="$run_base-outage"
stop_services() {
  TEST_SERVICES_DIR="$shared_dir" bash scripts/test-services.sh stop || true
  TEST_SERVICES_DIR="$outage_dir" bash scripts/test-services.sh stop || true
  rm -f "$shared_dir.lock" "$outage_dir.lock" "$run_base-shared.env" "$run_base-outage.env"
}
trap stop_services EXIT

if [ -n "${BENCH_ONLY:-}" ]; then
  # the parts BENCH_ONLY runs use the shared brokers only
  log "BENCH_ONLY=$BENCH_ONLY: starting one set of test brokers"
  TEST_SERVICES_DIR="$shared_dir" bash scripts/test-services.sh start >"$run_base-shared.env"
  set -a
  # shellcheck source=/dev/null
  . "$run_base-shared.env"
  set +a
  rm -f "$run_base-shared.env"
  node --import tsx scripts/bench/run.ts
  exit 0
fi

# one after the other: the first provisions what is missing (Debian packages, Kafka jars)
log "starting two sets of test brokers"
TEST_SERVICES_DIR="$shared_dir" bash scripts/test-services.sh start >"$run_base-shared.env"
TEST_SERVICES_DIR="$outage_dir" bash scripts/test-services.sh start >"$run_base-outage.env"

set -a
# shellcheck source=/dev/null
. "$run_base-shared.env"
set +a
OUTAGE_KAFKA_BROKERS=$(sed -n 's/^KAFKA_BROKERS=//p' "$run_base-outage.env")
OUTAGE_MQTT_URL=$(sed -n 's/^MQTT_URL=//p' "$run_base-outage.env")
OUTAGE_TEST_SERVICES_DIR="$outage_dir"
export OUTAGE_KAFKA_BROKERS OUTAGE_MQTT_URL OUTAGE_TEST_SERVICES_DIR
rm -f "$run_base-shared.env" "$run_base-outage.env"

node --import tsx scripts/bench/run.ts
