#!/usr/bin/env bash
# `npm test`: type-check, provision the test services (Kafka, Mosquitto, socat …), run every test.
# --unit runs only the unit tests beside the modules (no services needed).
set -euo pipefail
shopt -s globstar nullglob
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci

echo "== type-check (tsc --noEmit)"
npx tsc --noEmit -p .

unit_tests=(agent/**/*.test.ts drivers/**/*.test.ts scripts/bench/*.test.ts)
system_tests=()
for file in test/**/*.test.ts; do
  case "$file" in test/vm/*) ;; *) system_tests+=("$file") ;; esac
done

# A hung test fails instead of holding the run. On Node 20 the limit also bounds each test file as a
# whole (22+ applies it per test); tests that need longer say so in their own { timeout }.
# Unit: the slowest file (monitor-command.test.ts) takes ~25 s in a full run on a 2-core VM. System: the longest file
# (services.test.ts) sums its own per-test limits to 10 min.
UNIT_TIMEOUT_MS=120000
SYSTEM_TIMEOUT_MS=900000
# The VM suite: one boot for the checks and one per power cut, each ~2–7 min of emulated CPU.
VM_TIMEOUT_MS=5400000

if [ "${1:-}" = "--unit" ]; then
  exec node --import tsx --test --test-timeout="$UNIT_TIMEOUT_MS" --test-reporter=spec "${unit_tests[@]}"
fi

echo "== test services"
services_env=$(bash scripts/test-services.sh start)
echo "$services_env"
set -a; eval "$services_env"; set +a
trap 'bash scripts/test-services.sh stop' EXIT

status=0
echo "== unit tests"
node --import tsx --test --test-timeout="$UNIT_TIMEOUT_MS" --test-concurrency=2 --test-reporter=spec "${unit_tests[@]}" || status=1

# One file at a time: these run real daemons and brokers and check reaction-time bounds from the
# issues, which a 2-core machine should not be asked to meet while another suite loads it.
echo "== hardware-in-the-loop and broker tests"
node --import tsx --test --test-timeout="$SYSTEM_TIMEOUT_MS" --test-concurrency=1 --test-reporter=spec "${system_tests[@]}" || status=1

# The virtual charge point (test/vm/): Debian's kernel in QEMU with systemd as PID 1 and gpio-sim
# lines. Last, alone, with the brokers stopped: an emulated CPU needs both cores. It provisions what
# it needs from Debian (scripts/vm/provision.sh); with CI=true a missing prerequisite fails it.
echo "== virtual charge point (QEMU)"
bash scripts/test-services.sh stop
trap - EXIT
node --import tsx --test --test-timeout="$VM_TIMEOUT_MS" --test-reporter=spec test/vm/*.test.ts || status=1

exit "$status"
