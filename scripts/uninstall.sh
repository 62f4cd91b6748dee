#!/usr/bin/env bash
# Removes what scripts/install.sh installed: stops and disables both units, removes them, the app in
# /opt/charger-agent, the sysusers.d entry and the charger-agent user. Keeps the operator's data:
# /etc/charger-agent (config.yaml, env), the unit drop-ins (systemctl edit) and the state in
# /var/lib/charger-agent (session ledger, unsent telemetry), unless --purge.
#
#   sudo scripts/uninstall.sh [--root DIR] [--purge]
#     --root DIR   remove from a staging tree made by install.sh --root DIR
#     --purge      also remove /etc/charger-agent, the drop-ins and /var/lib/charger-agent
# The gpio and dialout groups stay: other software uses them.
set -euo pipefail

readonly UNITS_INSTALLED=(charger-agent.service charger-monitor.service)
readonly USER_NAME=charger-agent

ROOT=""
PURGE=""

log() { printf 'uninstall: %s\n' "$*" >&2; }
die() { printf 'uninstall: ERROR: %s\n' "$*" >&2; exit 1; }

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
      --root=*) ROOT=${1#--root=} ;;
      --purge) PURGE=1 ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown option $1 (see --help)" ;;
    esac
    shift
  done
  if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT="$(cd "$ROOT" && pwd)"
    [ "$ROOT" != / ] || ROOT=""
  fi
  [ -n "$ROOT" ] || [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0), or use --root DIR for a staging tree"
  if [ -n "$ROOT" ] && [ "$(id -u)" -ne 0 ] && grep -qs "^$USER_NAME:" "$ROOT/etc/passwd"; then
    die "removing user $USER_NAME from $ROOT/etc/passwd needs root"
  fi
}

remove() {
  local path
  for path in "$@"; do
    [ -e "$path" ] || [ -L "$path" ] || continue
    rm -rf "$path"
    log "removed $path"
  done
}

# Before the app is removed: stopping runs the unit's ExecStopPost (relay-safe), which leaves the
# relay line exported as an output at its open level; it stays there after the uninstall.
stop_units() {
  local units="$ROOT/etc/systemd/system" unit
  if [ -z "$ROOT" ]; then
    systemctl disable --now --quiet "${UNITS_INSTALLED[@]}" 2>/dev/null || true
    log "stopped the units; their ExecStopPost left the relay line at its open level"
    return 0
  fi
  # Offline: what `systemctl --root enable` (install.sh --enable) linked.
  for unit in "${UNITS_INSTALLED[@]}"; do
    if [ -f "$units/$unit" ]; then systemctl --root="$ROOT" --quiet disable "$unit" 2>/dev/null || true; fi
    remove "$units"/*.wants/"$unit"
  done
}

remove_user() {
  if [ -z "$ROOT" ]; then
    if getent passwd "$USER_NAME" >/dev/null; then userdel "$USER_NAME" && log "removed user $USER_NAME"; fi
    if getent group "$USER_NAME" >/dev/null; then groupdel "$USER_NAME"; fi
    return 0
  fi
  if [ -f "$ROOT/etc/passwd" ] && grep -q "^$USER_NAME:" "$ROOT/etc/passwd"; then
    userdel --prefix "$ROOT" "$USER_NAME" && log "removed user $USER_NAME from $ROOT/etc/passwd"
  fi
  if [ -f "$ROOT/etc/group" ] && grep -q "^$USER_NAME:" "$ROOT/etc/group"; then
    groupdel --prefix "$ROOT" "$USER_NAME"
  fi
}

main() {
  parse_args "$@"
  local units="$ROOT/etc/systemd/system" unit
  stop_units
  for unit in "${UNITS_INSTALLED[@]}"; do remove "$units/$unit"; done
  if [ -z "$ROOT" ]; then
    systemctl daemon-reload
    systemctl reset-failed "${UNITS_INSTALLED[@]}" 2>/dev/null || true
  fi
  remove "$ROOT/opt/charger-agent" "$ROOT"/opt/.charger-agent.new.*
  remove "$ROOT/usr/lib/sysusers.d/charger-agent.conf"
  remove_user
  if [ -n "$PURGE" ]; then
    remove "$ROOT/etc/charger-agent" "$ROOT/var/lib/charger-agent"
    for unit in "${UNITS_INSTALLED[@]}"; do remove "$units/$unit.d"; done
  else
    local kept=""
    for path in "$ROOT/etc/charger-agent" "$ROOT/var/lib/charger-agent" "$units"/charger-*.service.d; do
      [ -e "$path" ] && kept="$kept $path"
    done
    [ -z "$kept" ] || log "kept:$kept (remove with --purge)"
  fi
  log "done"
}

main "$@"
