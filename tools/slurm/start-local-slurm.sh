#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine, for tests of the `--profile slurm` path:
# munged, slurmctld and slurmd (optionally MariaDB + slurmdbd), partitions `cpu` and `gpu`, fake GPUs
# (gres/gpu backed by /dev/null). Installs the Debian packages it misses (apt). Needs root.
# Idempotent: daemons already running from $SLURMLAB are left alone, missing ones are started.
# Stop with tools/slurm/stop-local-slurm.sh (it kills only the pids recorded here).
#
# Knobs (environment):
#   SLURMLAB=/tmp/featgeom-slurm  config, state, logs and pid files
#   SLURMLAB_ACCOUNTING=none      none: no accounting database; sacct fails, so Snakemake must use
#                                   `slurm-status-command: squeue` (profiles/slurm, "no accounting" switch)
#                                 slurmdbd: also MariaDB + slurmdbd, so sacct works (the plugin's default)
#   SLURMLAB_CPUS=8               CPUs the node advertises, may exceed the hardware (default max(nproc, 8))
#   SLURMLAB_MEM_MB=...           memory the node advertises (default 80% of MemTotal)
#   SLURMLAB_GPUS=1               fake GPUs
#
# /etc/slurm/slurm.conf is linked to the generated $SLURMLAB/etc/slurm.conf (srun inside jobs reads only that
# path); $SLURMLAB/env.sh exports SLURM_CONF too.
set -euo pipefail

LAB="${SLURMLAB:-/tmp/featgeom-slurm}"
ACCOUNTING="${SLURMLAB_ACCOUNTING:-none}"
GPUS="${SLURMLAB_GPUS:-1}"
CPUS="${SLURMLAB_CPUS:-$(( $(nproc) > 8 ? $(nproc) : 8 ))}"
MEM_MB="${SLURMLAB_MEM_MB:-$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)}"
# sacctmgr reaches slurmdbd only through munge's default socket, whatever AuthInfo says
MUNGE_SOCKET=/run/munge/munge.socket.2
DB_SOCKET="$LAB/run/mysqld/mysqld.sock"

log() { printf '[start-local-slurm] %s\n' "$*" >&2; }
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_until() {  # <tries of 0.1 s> <command...>: true once the command succeeds
  local tries=$1; shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

check_mode() {
  [[ "$ACCOUNTING" == none || "$ACCOUNTING" == slurmdbd ]] || { log "SLURMLAB_ACCOUNTING must be none or slurmdbd"; exit 2; }
  # slurmctld reads its accounting plugin only at start: switching modes needs a stop first
  if alive "$LAB/run/slurmctld.pid" && [[ -s "$LAB/mode" && "$(cat "$LAB/mode")" != "$ACCOUNTING" ]]; then
    log "running with SLURMLAB_ACCOUNTING=$(cat "$LAB/mode"); run tools/slurm/stop-local-slurm.sh first"; exit 2
  fi
}

install_packages() {
  local packages=(slurmctld slurmd slurm-client munge) missing=()
  [[ "$ACCOUNTING" == slurmdbd ]] && packages+=(slurmdbd mariadb-server)
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # without systemd the packages' postinst cannot start the daemons: we start ours below
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

CONFIG_CHANGED=""
write_if_changed() {  # <path> <mode>, content on stdin
  local path=$1 mode=$2
  cat > "$path.new"; chmod "$mode" "$path.new"
  if cmp -s "$path.new" "$path"; then rm -f "$path.new"; else mv "$path.new" "$path"; CONFIG_CHANGED=1; fi
}

accounting_lines() {
  if [[ "$ACCOUNTING" == slurmdbd ]]; then
    printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=localhost \
      AccountingStoragePort=6819 AccountingStorageTRES=gres/gpu JobAcctGatherType=jobacct_gather/linux
  else
    printf '%s\n' AccountingStorageType=accounting_storage/none JobAcctGatherType=jobacct_gather/none
  fi
}

write_slurm_conf() {
  write_if_changed "$LAB/etc/slurm.conf" 0644 <<EOF
# Single-node test cluster written by tools/slurm/start-local-slurm.sh
ClusterName=featgeom
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$LAB/state/slurmctld
SlurmdSpoolDir=$LAB/state/slurmd
SlurmctldPidFile=$LAB/run/slurmctld.pid
SlurmdPidFile=$LAB/run/slurmd.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.log
# no cgroups (containers, no systemd): plain process tracking, no binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
# advertise SLURMLAB_CPUS even beyond the hardware, so that 8-thread rules fit on a 2-core CI machine
SlurmdParameters=config_overrides
$(accounting_lines)
JobCompType=jobcomp/none
# finished jobs stay listed by squeue for 1 h: Snakemake's squeue status mode needs
# MinJobAge >= 3 x slurm-init-seconds-before-status-checks, and the tests read the job list
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
# the partitions profiles/slurm names by default, both on the one node
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
  # a gres/gpu needs a device file: /dev/null stands in (a Count-only line is rejected as "0 < 1")
  { echo "AutoDetect=off"
    for ((i = 0; i < GPUS; i++)); do echo "NodeName=localhost Name=gpu File=/dev/null"; done
  } | write_if_changed "$LAB/etc/gres.conf" 0644
  printf 'export SLURM_CONF=%q\n' "$LAB/etc/slurm.conf" > "$LAB/env.sh"
}

link_default_config() {
  # The slurm-jobstep plugin starts each job's `srun` with SLURM_* variables removed, SLURM_CONF
  # included: srun inside a job reads the default path only.
  mkdir -p /etc/slurm
  if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    log "/etc/slurm/slurm.conf exists and is no link: jobs' srun would read it; move it away first"; exit 1
  fi
  ln -sfn "$LAB/etc/slurm.conf" /etc/slurm/slurm.conf
}

start_munge() {
  mkdir -p "$LAB/munge" /run/munge
  chown munge:munge "$LAB/munge" /run/munge; chmod 0700 "$LAB/munge"; chmod 0755 /run/munge
  if [[ ! -s "$LAB/munge/munge.key" ]]; then
    dd if=/dev/urandom of="$LAB/munge/munge.key" bs=1 count=1024 status=none
  fi
  chown munge:munge "$LAB/munge/munge.key"; chmod 0400 "$LAB/munge/munge.key"
  alive "$LAB/munge/munged.pid" && return 0
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "a munged this script did not start already serves $MUNGE_SOCKET: stop it first"; exit 1
  fi
  log "starting munged"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  # munged runs as user munge: its pid file must live in a munge-owned folder
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" --key-file="$LAB/munge/munge.key" \
    --pid-file="$LAB/munge/munged.pid" --seed-file="$LAB/munge/munged.seed" --log-file="$LAB/munge/munged.log"
  wait_until 50 test -S "$MUNGE_SOCKET"
  munge -n | unmunge >/dev/null
}

mariadb_sql() { mariadb --no-defaults -uroot --socket="$DB_SOCKET" "$@"; }

start_accounting() {
  mkdir -p "$LAB/mysql" "$LAB/run/mysqld"; chown mysql:mysql "$LAB/mysql" "$LAB/run/mysqld"
  if [[ ! -d "$LAB/mysql/data/mysql" ]]; then
    mariadb-install-db --no-defaults --datadir="$LAB/mysql/data" --user=mysql \
      --auth-root-authentication-method=normal --skip-test-db >"$LAB/log/mariadb-install.log" 2>&1
  fi
  if ! alive "$LAB/run/mysqld/mysqld.pid"; then
    log "starting mariadbd (127.0.0.1:3306)"
    setsid /usr/sbin/mariadbd --no-defaults --datadir="$LAB/mysql/data" --user=mysql --socket="$DB_SOCKET" \
      --pid-file="$LAB/run/mysqld/mysqld.pid" --bind-address=127.0.0.1 --port=3306 \
      --log-error="$LAB/log/mariadb.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
    wait_until 300 mariadb_sql -e 'select 1' || { log "mariadbd did not start; see $LAB/log/mariadb.log"; exit 1; }
  fi
  mariadb_sql <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'featgeom';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'featgeom';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
  write_if_changed "$LAB/etc/slurmdbd.conf" 0600 <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$LAB/run/slurmdbd.pid
LogFile=$LAB/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=featgeom
StorageLoc=slurm_acct_db
EOF
  if ! alive "$LAB/run/slurmdbd.pid"; then log "starting slurmdbd"; SLURM_CONF="$LAB/etc/slurm.conf" /usr/sbin/slurmdbd; fi
  wait_until 100 sacctmgr -n show cluster || { log "slurmdbd did not answer; see $LAB/log/slurmdbd.log"; exit 1; }
  sacctmgr -n -P show cluster format=cluster | grep -qx featgeom || sacctmgr -i add cluster featgeom >/dev/null
  sacctmgr -n -P show account format=account | grep -qx lab ||
    sacctmgr -i add account lab Description=lab Organization=lab >/dev/null
  sacctmgr -n -P show assoc where user="$(id -un)" account=lab format=account | grep -qx lab ||
    sacctmgr -i add user "$(id -un)" Account=lab DefaultAccount=lab >/dev/null
}

node_state() { sinfo -h -N -n localhost -p cpu -o '%T' 2>/dev/null || true; }

start_slurm() {
  if ! alive "$LAB/run/slurmctld.pid"; then
    log "starting slurmctld"
    /usr/sbin/slurmctld -i   # -i: ignore state saved under another configuration
  elif [[ -n "$CONFIG_CHANGED" ]]; then
    log "configuration changed: scontrol reconfigure"; scontrol reconfigure
  fi
  wait_until 100 bash -c 'scontrol ping | grep -q UP'
  if ! alive "$LAB/run/slurmd.pid"; then
    log "starting slurmd"
    /usr/sbin/slurmd -N localhost   # node name `localhost` whatever the hostname
  fi
  local state=""
  for _ in $(seq 150); do
    state="$(node_state)"
    case "$state" in idle | mixed | allocated | completing) return 0 ;; down* | drain*)
      scontrol update nodename=localhost state=resume 2>/dev/null || true ;; esac
    sleep 0.2
  done
  log "node not ready (state '$state'); see $LAB/log/"; exit 1
}

check_mode
install_packages
mkdir -p "$LAB"/{etc,run,log,state/slurmctld,state/slurmd}
write_slurm_conf
link_default_config
export SLURM_CONF="$LAB/etc/slurm.conf"
start_munge
[[ "$ACCOUNTING" == slurmdbd ]] && start_accounting
start_slurm
echo "$ACCOUNTING" > "$LAB/mode"
log "up: node localhost, CPUs=$CPUS RealMemory=${MEM_MB}MB gpu:$GPUS (fake), accounting=$ACCOUNTING"
log "now: source $LAB/env.sh"
