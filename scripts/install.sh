#!/usr/bin/env bash
# Installs charger-agent on Raspberry Pi OS / Debian, from this source tree:
#   /opt/charger-agent              the built app (dist/) with production dependencies only
#   /etc/systemd/system/            charger-agent.service, charger-monitor.service
#   /usr/lib/sysusers.d/            the charger-agent system user (groups gpio, dialout)
#   /etc/charger-agent/             config.yaml and env, created from the examples once, never overwritten
# then enables and starts both units. Running it again changes nothing unless the sources changed
# (then it updates the app and restarts the units).
#
#   sudo scripts/install.sh [options]
#     --root DIR        install into a staging tree DIR (image builders, tests): no daemon-reload,
#                       no enable, no start; the user is created only if DIR/etc/passwd exists
#     --enable          with --root: enable the units offline (systemctl --root=DIR enable)
#     --no-start        enable the units but do not (re)start them
#     --build | --no-build   always build / never build (default: build when dist/ is missing or
#                       older than the sources, with `npm ci && npm run build` as the tree's owner)
#     --deps ci         production dependencies by `npm ci --omit=dev` in /opt/charger-agent (default)
#     --deps copy       copy this tree's node_modules and `npm prune --omit=dev` (offline; same CPU
#                       architecture only, since native modules are copied as built)
#     --skip-deps       no node_modules at all (tests of the file layout)
set -euo pipefail

readonly UNITS_INSTALLED=(charger-agent.service charger-monitor.service)
readonly USER_NAME=charger-agent
readonly NODE_MIN_MAJOR=20

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly SRC
ROOT=""
ENABLE_OFFLINE=""
START=1
BUILD=auto
DEPS=ci

log() { printf 'install: %s\n' "$*" >&2; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
      --root=*) ROOT=${1#--root=} ;;
      --enable) ENABLE_OFFLINE=1 ;;
      --no-start) START="" ;;
      --build) BUILD=always ;;
      --no-build) BUILD=never ;;
      --deps) [ $# -ge 2 ] || die "--deps needs ci, copy or none"; DEPS=$2; shift ;;
      --deps=*) DEPS=${1#--deps=} ;;
      --skip-deps) DEPS=none ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option $1 (see --help)" ;;
    esac
    shift
  done
  case "$DEPS" in ci | copy | none) ;; *) die "--deps takes ci, copy or none, not '$DEPS'" ;; esac
  if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
    [ "$ROOT" != / ] || ROOT=""
  fi
  [ -z "$ENABLE_OFFLINE" ] || [ -n "$ROOT" ] || die "--enable is for --root; a live install always enables"
}

# ---------------------------------------------------------------- checks

node_major() {
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

require_node() {
  local bin=$1 what=$2 major
  major=$(node_major "$bin")
  [ "$major" -ge "$NODE_MIN_MAJOR" ] && return 0
  die "$what needs Node.js >= $NODE_MIN_MAJOR; $bin is ${major/#0/missing or unusable} (Raspberry Pi OS bookworm ships 18: install 20 or 22, e.g. from https://github.com/nodesource/distributions)"
}

preflight() {
  if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0), or use --root DIR for a staging tree"
    command -v systemctl >/dev/null || die "systemctl not found: this installs systemd units"
    # The units run /usr/bin/node, whatever node is first on this shell's PATH.
    require_node /usr/bin/node "the units (ExecStart=/usr/bin/node …)"
  elif [ ! -x "$ROOT/usr/bin/node" ]; then
    log "note: $ROOT/usr/bin/node does not exist; the units need Node.js >= $NODE_MIN_MAJOR there"
  fi
  if needs_build || [ "$DEPS" != none ]; then
    command -v node >/dev/null || die "node not found on PATH (needed to build and install dependencies)"
    require_node "$(command -v node)" "building and installing dependencies"
    command -v npm >/dev/null || die "npm not found on PATH"
  fi
}

# ---------------------------------------------------------------- build

needs_build() {
  case "$BUILD" in
    always) return 0 ;;
    never) return 1 ;;
  esac
  [ -f "$SRC/dist/agent/cli.js" ] || return 0
  local newer
  newer=$(find "$SRC/agent" "$SRC/drivers" "$SRC/package.json" "$SRC/package-lock.json" "$SRC"/tsconfig*.json \
    -newer "$SRC/dist/agent/cli.js" -print -quit 2>/dev/null || true)
  [ -n "$newer" ]
}

# Build as the owner of the source tree, so that `sudo install.sh` leaves no root-owned files in it.
as_source_owner() {
  local owner home
  owner=$(stat -c %U "$SRC")
  if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ] && command -v runuser >/dev/null; then
    home=$(getent passwd "$owner" | cut -d: -f6)
    runuser -u "$owner" -- env HOME="${home:-/tmp}" "$@"
  else
    "$@"
  fi
}

build() {
  if needs_build; then
    log "building in $SRC (npm ci && npm run build)"
    (cd "$SRC" && as_source_owner npm ci --no-audit --no-fund && as_source_owner npm run build) >&2
  fi
  [ -f "$SRC/dist/agent/cli.js" ] || die "$SRC/dist/agent/cli.js is missing: run npm ci && npm run build (or drop --no-build)"
}

# ---------------------------------------------------------------- the app

# What a running service depends on: a change means the units must restart.
fingerprint() {
  local app=$1 units=$2
  {
    if [ -d "$app" ]; then
      (cd "$app" && find . -path ./node_modules -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum)
    fi
    for unit in "${UNITS_INSTALLED[@]}"; do
      if [ -f "$units/$unit" ]; then sha256sum <"$units/$unit"; fi
    done
  } | sha256sum | cut -d' ' -f1
}

install_deps() {
  local app=$1 current=$2
  case "$DEPS" in
    none) return 0 ;;
  esac
  # Same lock file, same method: keep the installed modules (hard links, no download, no rebuild).
  if [ -d "$current/node_modules" ] && cmp -s "$current/package-lock.json" "$app/package-lock.json" \
    && [ "$(cat "$current/.deps" 2>/dev/null)" = "$DEPS" ]; then
    cp -al "$current/node_modules" "$app/node_modules"
  elif [ "$DEPS" = copy ]; then
    [ -d "$SRC/node_modules" ] || die "--deps copy: $SRC/node_modules is missing (npm ci first)"
    log "copying node_modules from $SRC and pruning dev dependencies"
    cp -a "$SRC/node_modules/." "$app/node_modules/"
    (cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund) >&2
  else
    log "installing production dependencies (npm ci --omit=dev)"
    (cd "$app" && npm ci --omit=dev --no-audit --no-fund) >&2
  fi
  # npm prune leaves the emptied scope directories of removed packages behind.
  [ ! -d "$app/node_modules" ] || find "$app/node_modules" -mindepth 1 -type d -empty -delete
  printf '%s\n' "$DEPS" >"$app/.deps"
}

STAGED=""

install_app() {
  local app=$1 parent staged
  parent=$(dirname "$app")
  mkdir -p "$parent"
  staged=$(mktemp -d "$parent/.charger-agent.new.XXXXXX")
  STAGED=$staged
  trap 'rm -rf "$STAGED"' EXIT
  cp -a "$SRC/package.json" "$SRC/package-lock.json" "$staged/"
  cp -a "$SRC/dist" "$staged/dist"
  for doc in README.md LICENSE; do
    if [ -f "$SRC/$doc" ]; then cp -a "$SRC/$doc" "$staged/"; fi
  done
  mkdir -p "$staged/examples"
  cp "$SRC/systemd/config.example.yaml" "$SRC/systemd/env.example" "$staged/examples/"
  install_deps "$staged" "$app"
  if [ "$(id -u)" -eq 0 ]; then chown -R 0:0 "$staged"; fi
  chmod -R u=rwX,go=rX "$staged"
  if [ -d "$app" ]; then mv "$app" "$staged.old"; fi
  mv "$staged" "$app"
  rm -rf "$staged.old"
  trap - EXIT
}

# ---------------------------------------------------------------- system files

# Copies when the content differs; says so. $3 is the mode.
put_file() {
  local from=$1 to=$2 mode=$3
  if [ -f "$to" ] && cmp -s "$from" "$to"; then
    chmod "$mode" "$to"
    return 0
  fi
  install -D -m "$mode" "$from" "$to"
  log "wrote $to"
}

# The operator's files: created from the example once, never touched again.
put_operator_file() {
  local from=$1 to=$2 mode=$3
  if [ -e "$to" ]; then
    cmp -s "$from" "$to" || log "kept $to (yours; the current example is in /opt/charger-agent/examples/)"
    return 0
  fi
  install -D -m "$mode" "$from" "$to"
  log "created $to from $(basename "$from")"
}

create_user() {
  local conf="$ROOT/usr/lib/sysusers.d/charger-agent.conf"
  put_file "$SRC/systemd/charger-agent.sysusers" "$conf" 0644
  if [ -n "$ROOT" ]; then
    if [ ! -f "$ROOT/etc/passwd" ] || [ "$(id -u)" -ne 0 ] || ! command -v systemd-sysusers >/dev/null; then
      log "note: user $USER_NAME not created in $ROOT (needs root and $ROOT/etc/passwd); systemd-sysusers.service creates it at first boot"
      return 0
    fi
    systemd-sysusers --root="$ROOT" "$conf"
    return 0
  fi
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$conf"
    return 0
  fi
  getent passwd "$USER_NAME" >/dev/null || useradd --system --user-group --home-dir /var/lib/charger-agent \
    --no-create-home --shell /usr/sbin/nologin --comment "EV charge-point controller" "$USER_NAME"
  local group
  for group in gpio dialout; do
    getent group "$group" >/dev/null || groupadd --system "$group"
    usermod -a -G "$group" "$USER_NAME"
  done
}

install_units() {
  local unit
  for unit in "${UNITS_INSTALLED[@]}"; do
    put_file "$SRC/systemd/$unit" "$ROOT/etc/systemd/system/$unit" 0644
  done
}

install_config() {
  local etc="$ROOT/etc/charger-agent"
  mkdir -p "$etc"
  chmod 0755 "$etc"
  put_operator_file "$SRC/systemd/config.example.yaml" "$etc/config.yaml" 0644
  # Read by PID 1 before it drops privileges: root only, so it may hold secrets.
  put_operator_file "$SRC/systemd/env.example" "$etc/env" 0600
}

# The unit's ExecStopPost (relay-safe) drives the relay line open after every stop or death of the
# agent. It reads gpio.relay from the config without the YAML library: check now that it can, so a
# config it cannot read shows at install time, not after a crash. A warning, not a failure: the
# config may still be the example (no relay) or be edited later.
check_relay_safe() {
  local app=$1 node=/usr/bin/node out
  if [ -n "$ROOT" ]; then node=$(command -v node || true); fi
  [ -n "$node" ] && [ -x "$node" ] || { log "note: relay-safe not checked (no node to run it)"; return 0; }
  if out=$("$node" "$app/dist/agent/cli.js" relay-safe --check --config "$ROOT/etc/charger-agent/config.yaml" 2>&1); then
    log "relay-safe (ExecStopPost) checked: $out"
  else
    log "WARNING: relay-safe, the unit's ExecStopPost, cannot drive the relay line open after a stop: $out"
  fi
}

# ---------------------------------------------------------------- services

activate() {
  local changed=$1
  if [ -n "$ROOT" ]; then
    if [ -n "$ENABLE_OFFLINE" ]; then systemctl --root="$ROOT" --quiet enable "${UNITS_INSTALLED[@]}"; fi
    return 0
  fi
  systemctl daemon-reload
  systemctl --quiet enable "${UNITS_INSTALLED[@]}"
  if command -v systemd-analyze >/dev/null; then
    local problems
    problems=$(systemd-analyze verify "${UNITS_INSTALLED[@]/#//etc/systemd/system/}" 2>&1) || true
    [ -z "$problems" ] || log "systemd-analyze verify says: $problems"
  fi
  [ -n "$START" ] || { log "enabled; not started (--no-start)"; return 0; }
  local unit failed=""
  for unit in "${UNITS_INSTALLED[@]}"; do
    if [ -n "$changed" ] || ! systemctl --quiet is-active "$unit"; then
      log "starting $unit"
      systemctl restart "$unit" || failed="$failed $unit"
    fi
  done
  [ -z "$failed" ] || die "installed, but did not start:$failed; see: journalctl -u charger-agent -u charger-monitor -n 50"
}

main() {
  parse_args "$@"
  preflight
  build
  local app="$ROOT/opt/charger-agent" units="$ROOT/etc/systemd/system" before after changed=""
  before=$(fingerprint "$app" "$units")
  install_app "$app"
  install_units
  create_user
  install_config
  check_relay_safe "$app"
  after=$(fingerprint "$app" "$units")
  [ "$before" = "$after" ] || changed=1
  activate "$changed"
  log "done${ROOT:+ (staged in $ROOT)}. Config: /etc/charger-agent/config.yaml; logs: journalctl -u charger-agent -f; report: charger-agent diagnose"
}

main "$@"
