#!/usr/bin/env bash
# Stop what tools/slurm/start-local-slurm.sh started: cancel the remaining jobs, then stop each daemon by
# the pid file it wrote (after checking that the pid still runs that daemon); never by process name.
# Idempotent: daemons already gone are skipped.
#   SLURMLAB=/tmp/featgeom-slurm  the folder given to the start script
#   SLURMLAB_PURGE=1              also delete the cluster's state, logs and accounting database
set -euo pipefail
LAB="${SLURMLAB:-/tmp/featgeom-slurm}"
export SLURM_CONF="$LAB/etc/slurm.conf"
log() { printf '[stop-local-slurm] %s\n' "$*" >&2; }
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {  # <executable name prefix> <pid file>
  local name=$1 pidfile=$2 pid exe
  [[ -s "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pidfile"; return 0; fi
  exe="$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)"
  # Debian's daemons are e.g. slurmctld-wlm: compare the prefix
  if [[ "$(basename "$exe")" != "$name"* ]]; then
    log "$name: pid $pid runs '$exe', not $name: left alone"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "$name: alive 10 s after TERM, KILL $pid"; kill -KILL "$pid"; fi
  rm -f "$pidfile"; log "$name ($pid) stopped"
}

if alive "$LAB/run/slurmctld.pid"; then
  scancel --quiet -u "$(id -un)" || true   # nothing left for slurmd to run
fi
stop_pidfile slurmd "$LAB/run/slurmd.pid"
stop_pidfile slurmctld "$LAB/run/slurmctld.pid"
stop_pidfile slurmdbd "$LAB/run/slurmdbd.pid"
stop_pidfile mariadbd "$LAB/run/mysqld/mysqld.pid"
stop_pidfile munged "$LAB/munge/munged.pid"
rm -f "$LAB/mode"
# the start script's link for srun inside jobs
[[ "$(readlink /etc/slurm/slurm.conf || true)" == "$LAB/etc/slurm.conf" ]] && rm -f /etc/slurm/slurm.conf
if [[ "${SLURMLAB_PURGE:-0}" == 1 ]]; then
  rm -rf "$LAB/state" "$LAB/log" "$LAB/mysql"; log "purged state, logs and database"
fi
