#!/usr/bin/env bash
# `npm test`: type-check, provision the test services (Kafka, Mosquitto, socat …), run every test.
# --unit runs only the unit tests beside the modules (no services needed).
set -euo pipefail
shopt -s globstar nullglob
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci

echo "== type-check (tsc --noEmit)"
npx tsc --noEmit -p .

unit_tests=(agent/**/*.test.ts drivers/**/*.test.ts)
system_tests=(test/**/*.test.ts)

if [ "${1:-}" = "--unit" ]; then
  exec node --import tsx --test --test-reporter=spec "${unit_tests[@]}"
fi

echo "== test services"
services_env=$(bash scripts/test-services.sh start)
echo "$services_env"
set -a; eval "$services_env"; set +a
trap 'bash scripts/test-services.sh stop' EXIT

echo "== tests"
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${unit_tests[@]}" "${system_tests[@]}"
