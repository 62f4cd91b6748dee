#!/usr/bin/env bash
# Real brokers for the broker and hardware-in-the-loop tests: a single-node KRaft Kafka 3.9.1 and a
# Mosquitto, each on free loopback ports, with their data in a run dir outside git.
# Over 400 lines on purpose: provisioning (apt, Maven Central), both brokers and their outage controls
# are one tool with one run dir and one lock; the parts share that state and would not stand apart.
#
#   start               provision what is missing, start (or reuse) both; stdout: env lines only
#   env                 print the env lines of the running services
#   status              one line per service; exit 3 when one is not running
#   stop                stop what `start` started and remove the run dir
#   stop-kafka | start-kafka   stop / restart the same broker, same ports, same data (an outage)
#   stop-mqtt  | start-mqtt    the same for Mosquitto
#
# Env lines printed by start/env: KAFKA_BROKERS=127.0.0.1:P  MQTT_URL=mqtt://127.0.0.1:Q
# TEST_SERVICES_DIR=<run dir>. Progress and errors go to stderr.
#
# Knobs: TEST_SERVICES_DIR (run dir, default ${TMPDIR:-/tmp}/charger-agent-test-services),
# XDG_CACHE_HOME (Kafka jars under charger-agent/kafka-3.9.1/libs), TEST_SERVICES_TIMEOUT_S
# (broker start timeout, default 120), KAFKA_HEAP_OPTS (default -Xms128m -Xmx512m).
# As root, missing Debian packages are installed; with CI=true every provisioning failure is fatal.
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
readonly DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly RUN_DIR="${TEST_SERVICES_DIR:-${TMPDIR:-/tmp}/charger-agent-test-services}"
readonly STATE_FILE="$RUN_DIR/services.env"
readonly KAFKA_LIBS="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/charger-agent/kafka-$KAFKA_VERSION/libs"
readonly START_TIMEOUT_S="${TEST_SERVICES_TIMEOUT_S:-120}"
readonly STOP_TIMEOUT_S=30

KAFKA_PORT=""
KAFKA_CONTROLLER_PORT=""
MQTT_PORT=""

log() { printf 'test-services: %s\n' "$*" >&2; }
die() { printf 'test-services: ERROR: %s\n' "$*" >&2; exit 1; }
is_ci() { [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; }

# ---------------------------------------------------------------- provisioning

# Debian package that provides each command or file we need.
declare -A PACKAGE_FOR=(
  [mosquitto]=mosquitto
  [socat]=socat
  [mbpoll]=mbpoll
  [kcat]=kcat
  [promtool]=prometheus
  [/lib/systemd/systemd-journal-remote]=systemd-journal-remote
  [java]=openjdk-17-jre-headless
  [mvn]=maven
)
# Services that the packages above start or enable, which we never want running.
readonly UNWANTED_SERVICES="mosquitto.service prometheus.service systemd-journal-remote.socket systemd-journal-remote.service"

has_tool() {
  case "$1" in
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] ;;
  esac
}

missing_packages() {
  local tool
  for tool in "${!PACKAGE_FOR[@]}"; do
    has_tool "$tool" || printf '%s\n' "${PACKAGE_FOR[$tool]}"
  done | sort -u
}

# Keep Debian's maintainer scripts from starting the services of what we install.
install_packages() {
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  local status=0
  export DEBIAN_FRONTEND=noninteractive
  { apt-get -o DPkg::Lock::Timeout=300 update -qq \
      && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"; } >&2 || status=$?
  [ -z "$own_policy" ] || rm -f "$policy"
  [ "$status" -eq 0 ] || return "$status"
  if [ -d /run/systemd/system ]; then
    # shellcheck disable=SC2086 # a list of unit names
    systemctl disable --now $UNWANTED_SERVICES >/dev/null 2>&1 || true
  fi
}

provision_packages() {
  local -a missing
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    local message="missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    is_ci && die "$message"
    if ! has_tool java || ! has_tool mvn || ! has_tool mosquitto; then die "$message"; fi
    log "WARNING: $message; tests that need them will fail"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  install_packages "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -eq 0 ] || die "still missing after apt-get install: ${missing[*]}"
}

# Fetch the broker jars once into a cache outside git; an interrupted fetch leaves no cache.
provision_kafka_libs() {
  [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local staging="$KAFKA_LIBS.partial.$$"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  rm -rf "$staging"
  if ! mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$staging" >&2; then
    rm -rf "$staging"
    die "mvn could not fetch the Kafka $KAFKA_VERSION jars (scripts/kafka/pom.xml)"
  fi
  [ -f "$staging/kafka_2.13-$KAFKA_VERSION.jar" ] || die "mvn ran but kafka_2.13-$KAFKA_VERSION.jar is missing"
  # A concurrent start may have finished first: keep its copy, which a broker may be using.
  if [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    rm -rf "$staging"
  else
    rm -rf "$KAFKA_LIBS"
    mv "$staging" "$KAFKA_LIBS"
  fi
}

# ---------------------------------------------------------------- state and processes

load_state() {
  [ -f "$STATE_FILE" ] || return 1
  # shellcheck source=/dev/null
  . "$STATE_FILE"
}

save_state() {
  mkdir -p "$RUN_DIR"
  printf 'KAFKA_PORT=%s\nKAFKA_CONTROLLER_PORT=%s\nMQTT_PORT=%s\n' \
    "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$MQTT_PORT" >"$STATE_FILE.tmp"
  mv "$STATE_FILE.tmp" "$STATE_FILE"
}

# Free loopback TCP ports, one per argument name; the kernel picks them.
free_ports() {
  node -e '
    const net = require("node:net");
    const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok, fail) => s.once("error", fail).listen(0, "127.0.0.1", ok))))
      .then(() => { console.log(servers.map((s) => s.address().port).join(" ")); servers.forEach((s) => s.close()); })
      .catch((e) => { console.error(e.message); process.exit(1); });
  ' "$1"
}

# Alive and not a zombie: an exited process that init has not reaped yet counts as gone.
is_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# When process $1 started (field 22 of /proc/PID/stat, clock ticks since boot): set at fork and
# kept across exec, so with the pid it names one process for good.
start_time() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  read -r -a fields <<<"${stat##*) }"
  printf '%s\n' "${fields[19]}"
}

# The pid in $1's pid file, if that process is alive and is the one we started (same pid and
# start time), so a recycled pid is never signalled. The start time, not the command line: a
# child that bash has forked but not yet exec'd still shows the script's command line, and on a
# busy machine a check in that window took a starting broker for a dead one.
live_pid() {
  local pid_file="$RUN_DIR/$1.pid" pid started
  [ -f "$pid_file" ] || return 1
  read -r pid started <"$pid_file" || true
  [ -n "$pid" ] && [ -n "$started" ] && is_running "$pid" || return 1
  [ "$(start_time "$pid")" = "$started" ] || return 1
  printf '%s\n' "$pid"
}

stop_process() {
  local name=$1 pid waited=0
  if ! pid=$(live_pid "$name"); then
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while is_running "$pid"; do
    if [ "$waited" -ge $((STOP_TIMEOUT_S * 10)) ]; then
      log "$name did not stop within ${STOP_TIMEOUT_S}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$RUN_DIR/$name.pid"
}

# Start a detached process whose output goes to a file, never to our stdout (start runs
# inside $(...), which would otherwise wait for the broker to exit), and that does not inherit
# the lock.
launch() {
  local name=$1
  shift
  setsid "$@" </dev/null >>"$RUN_DIR/$name.out" 2>&1 9>&- &
  local pid=$!
  # A child that has already exited has no start time; live_pid then reports it gone.
  printf '%s %s\n' "$pid" "$(start_time "$pid" || true)" >"$RUN_DIR/$name.pid"
}

port_accepts() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_logs() {
  local file
  for file in "$@"; do
    [ -s "$file" ] || continue
    printf -- '--- last lines of %s ---\n' "$file" >&2
    tail -n 40 "$file" >&2
  done
}

# Sets ENDED to how the process in $1's pid file ended, when it is this shell's child (so not
# from inside $(...)) and has ended: a signal (an OOM kill leaves no log line of its own) or an
# exit status; to nothing otherwise.
how_it_ended() {
  local pid _started status=0
  ENDED=
  read -r pid _started <"$RUN_DIR/$1.pid" 2>/dev/null || return 0
  [ -n "$pid" ] && ! is_running "$pid" || return 0
  wait "$pid" 2>/dev/null || status=$?
  if [ "$status" -eq 127 ]; then return 0; fi  # not our child
  if [ "$status" -gt 128 ]; then
    ENDED=" (killed by signal $((status - 128)))"
  else
    ENDED=" (exit status $status)"
  fi
}

# Wait until "$2..." succeeds, failing early if the process dies; $1 is the service name.
wait_until() {
  local name=$1 deadline=$((SECONDS + START_TIMEOUT_S))
  shift
  until "$@"; do
    if ! live_pid "$name" >/dev/null; then
      show_logs "$RUN_DIR/$name.out" "$RUN_DIR/$name.log"
      how_it_ended "$name"
      die "$name exited during start-up$ENDED (last log lines above)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_logs "$RUN_DIR/$name.out" "$RUN_DIR/$name.log"
      stop_process "$name"
      die "$name not ready within ${START_TIMEOUT_S}s (last log lines above; TEST_SERVICES_TIMEOUT_S sets the limit)"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- Kafka

write_kafka_config() {
  cat >"$RUN_DIR/kafka.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$RUN_DIR/kafka-data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.threads=1
EOF
  cat >"$RUN_DIR/kafka-log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$RUN_DIR/kafka.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.Kafka=INFO
EOF
}

# The java command line for a Kafka main class, in the array KAFKA_JAVA.
kafka_java_command() {
  local -a heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
  KAFKA_JAVA=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j.configuration="file:$RUN_DIR/kafka-log4j.properties"
    -cp "$KAFKA_LIBS/*" "$@")
}

format_kafka_storage() {
  [ -f "$RUN_DIR/kafka-data/meta.properties" ] && return 0
  local cluster_id
  # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding.
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  kafka_java_command kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN_DIR/kafka.properties"
  "${KAFKA_JAVA[@]}" >>"$RUN_DIR/kafka.out" 2>&1 || { show_logs "$RUN_DIR/kafka.out"; die "kafka storage format failed"; }
}

# Ready means a Metadata request (v0) lists at least one broker: the broker is registered with
# the controller and unfenced, so it accepts produce and fetch requests.
kafka_metadata_ready() {
  port_accepts "$KAFKA_PORT" || return 1
  node -e '
    const net = require("node:net");
    const clientId = Buffer.from("test-services");
    const body = Buffer.alloc(14 + clientId.length);
    body.writeInt16BE(3, 0);                 // api key: Metadata
    body.writeInt16BE(0, 2);                 // api version 0
    body.writeInt32BE(1, 4);                 // correlation id
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    body.writeInt32BE(0, 10 + clientId.length); // no topics: all topics
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    let reply = Buffer.alloc(0);
    const socket = net.connect(Number(process.argv[1]), "127.0.0.1", () => socket.write(Buffer.concat([size, body])));
    socket.setTimeout(2000, () => process.exit(1));
    socket.on("error", () => process.exit(1));
    socket.on("data", (chunk) => {
      reply = Buffer.concat([reply, chunk]);
      if (reply.length < 12) return;
      process.exit(reply.readInt32BE(8) > 0 ? 0 : 1);
    });
  ' "$KAFKA_PORT" 2>/dev/null
}

kafka_start() {
  if live_pid kafka >/dev/null; then
    log "kafka already running on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  port_accepts "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process; run '$0 stop' and start again"
  write_kafka_config
  format_kafka_storage
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
  kafka_java_command kafka.Kafka "$RUN_DIR/kafka.properties"
  launch kafka "${KAFKA_JAVA[@]}"
}

kafka_wait() {
  local started=$SECONDS
  wait_until kafka kafka_metadata_ready
  log "kafka ready on 127.0.0.1:$KAFKA_PORT after $((SECONDS - started))s"
}

# ---------------------------------------------------------------- Mosquitto

mosquitto_bin() {
  command -v mosquitto 2>/dev/null || printf '/usr/sbin/mosquitto\n'
}

mqtt_start() {
  if live_pid mosquitto >/dev/null; then
    log "mosquitto already running on 127.0.0.1:$MQTT_PORT"
    return 0
  fi
  port_accepts "$MQTT_PORT" && die "port $MQTT_PORT is taken by another process; run '$0 stop' and start again"
  cat >"$RUN_DIR/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stdout
log_type error
log_type warning
EOF
  log "starting mosquitto on 127.0.0.1:$MQTT_PORT"
  launch mosquitto "$(mosquitto_bin)" -c "$RUN_DIR/mosquitto.conf"
}

mqtt_port_ready() { port_accepts "$MQTT_PORT"; }

mqtt_wait() {
  wait_until mosquitto mqtt_port_ready
  log "mosquitto ready on 127.0.0.1:$MQTT_PORT"
}

# ---------------------------------------------------------------- commands

print_env() {
  printf 'KAFKA_BROKERS=%q\n' "127.0.0.1:$KAFKA_PORT"
  printf 'MQTT_URL=%q\n' "mqtt://127.0.0.1:$MQTT_PORT"
  printf 'TEST_SERVICES_DIR=%q\n' "$RUN_DIR"
}

# Serialise concurrent invocations on the same run dir.
take_lock() {
  mkdir -p "$(dirname "$RUN_DIR")"
  exec 9>"$RUN_DIR.lck"
  flock -w 300 9 || die "another test-services.sh holds $RUN_DIR.lck"
}

require_state() {
  load_state || die "no services in $RUN_DIR: run '$0 start' first"
}

cmd_start() {
  provision_packages
  provision_kafka_libs
  take_lock
  KAFKA_PORT="" KAFKA_CONTROLLER_PORT="" MQTT_PORT=""
  if load_state && ! live_pid kafka >/dev/null && ! live_pid mosquitto >/dev/null; then
    log "discarding stale run dir $RUN_DIR"
    rm -rf "$RUN_DIR"
    KAFKA_PORT="" KAFKA_CONTROLLER_PORT="" MQTT_PORT=""
  fi
  if [ -z "$KAFKA_PORT" ]; then
    mkdir -p "$RUN_DIR"
    # A start that fails half-way leaves nothing behind: test.sh sets its stop trap only after.
    trap 'stop_all >/dev/null 2>&1' EXIT
    read -r KAFKA_PORT KAFKA_CONTROLLER_PORT MQTT_PORT < <(free_ports 3) || die "no free loopback ports"
    [ -n "$MQTT_PORT" ] || die "could not pick free loopback ports (is node on PATH?)"
    save_state
  fi
  kafka_start
  mqtt_start
  mqtt_wait
  kafka_wait
  trap - EXIT
  print_env
}

stop_all() {
  stop_process mosquitto
  stop_process kafka
  rm -rf "$RUN_DIR"
  rm -f "$RUN_DIR.lck"
}

cmd_stop() {
  take_lock
  if [ ! -d "$RUN_DIR" ]; then
    log "nothing to stop ($RUN_DIR does not exist)"
    rm -f "$RUN_DIR.lck"
    return 0
  fi
  stop_all
  log "stopped; removed $RUN_DIR"
}

cmd_env() {
  require_state
  live_pid kafka >/dev/null || die "kafka is not running (run dir $RUN_DIR)"
  live_pid mosquitto >/dev/null || die "mosquitto is not running (run dir $RUN_DIR)"
  print_env
}

cmd_status() {
  require_state
  local name port pid down=0
  for name in kafka mosquitto; do
    port=$KAFKA_PORT
    [ "$name" = kafka ] || port=$MQTT_PORT
    if pid=$(live_pid "$name"); then
      printf '%s running pid=%s port=%s\n' "$name" "$pid" "$port"
    else
      printf '%s stopped port=%s\n' "$name" "$port"
      down=1
    fi
  done
  [ "$down" -eq 0 ] || exit 3
}

main() {
  local command=${1:-}
  case "$command" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    stop-kafka) take_lock; require_state; stop_process kafka ;;
    start-kafka) take_lock; require_state; kafka_start; kafka_wait ;;
    stop-mqtt) take_lock; require_state; stop_process mosquitto ;;
    start-mqtt) take_lock; require_state; mqtt_start; mqtt_wait ;;
    *)
      printf 'usage: %s start|stop|env|status|stop-kafka|start-kafka|stop-mqtt|start-mqtt\n' "$0" >&2
      exit 2
      ;;
  esac
}

main "$@"
