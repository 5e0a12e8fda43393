#!/usr/bin/env bash
# Start a real single-node SLURM on this machine, for tests/test_slurm.py (issue #4).
#
#   sudo bash .ci/slurm/up.sh      # as root; idempotent (a second call finds it running and returns)
#   sudo bash .ci/slurm/down.sh    # stops only the daemons this script started, by PID
#
# What it does:
#   1. installs Debian's slurmctld slurmd slurm-client munge (+ slurmdbd mariadb-server for accounting) if missing;
#   2. writes /etc/slurm/{slurm.conf,gres.conf,slurmdbd.conf} for this host: one node, one partition "debug",
#      one fake GPU (GRES gpu:1 backed by /dev/null) so that `gpu=1` jobs are accepted and scheduled;
#   3. starts munged (unless one already answers), a private MariaDB (own datadir, socket and TCP port on
#      127.0.0.1), slurmdbd, slurmctld and slurmd; creates the account "dipci" for root;
#   4. waits until `sinfo` shows the node idle, and writes the PIDs it started to $DIP_SLURM_DIR/pids.
#
# Why accounting (slurmdbd + MariaDB, ~15 s more): the executor plugin's default status command is `sacct`, as on
# real clusters; without accounting it hangs. It also gives the tests SLURM's own durable per-job record (State,
# ExitCode, WorkDir, Comment) to assert on, independent of MinJobAge. DIP_SLURM_ACCOUNTING=0 skips it (then use
# `--slurm-status-command squeue` and `scontrol`/the slurmctld log, which forget jobs after MinJobAge).
#
# The configuration must live in /etc/slurm/: the in-job step plugin drops SLURM_CONF before it calls srun.
# A slurm.conf there that this script did not write is never overwritten (set DIP_SLURM_FORCE=1 to do so).
set -euo pipefail

DIR=${DIP_SLURM_DIR:-/var/tmp/dip-slurm}
ACCOUNTING=${DIP_SLURM_ACCOUNTING:-1}
CLUSTER=dipci
ACCOUNT=dipci
PARTITION=debug
DB_PORT=${DIP_SLURM_DB_PORT:-3317}
DB_PASS=dipci-local-only
# The node advertises at least this many CPUs and MB to the scheduler (SlurmdParameters=config_overrides), so that the
# workflow profile's real-cluster requests (e.g. --cpus-per-gpu=4) are schedulable on a 2-core CI machine.
# Limits are for scheduling only here (TaskPlugin=task/none): nothing is pinned or enforced.
MIN_CPUS=${DIP_SLURM_CPUS:-8}
MIN_MEM_MB=${DIP_SLURM_MEM_MB:-65536}
MARK="# written by dip .ci/slurm/up.sh"

log() { printf '[slurm-up] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and writes /etc/slurm)"

mkdir -p "$DIR"/{log,state,spool,run}
PIDS="$DIR/pids"

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Already up? (every recorded PID alive and the node answers)
if [ -s "$PIDS" ]; then
    all_alive=1
    while read -r _name pid; do alive "$pid" || all_alive=0; done <"$PIDS"
    if [ "$all_alive" = 1 ] && sinfo -h >/dev/null 2>&1; then
        log "already running (PIDs in $PIDS)"
        exit 0
    fi
    die "$PIDS lists daemons that are not all alive; run .ci/slurm/down.sh first"
fi

# ---------------------------------------------------------------------------------------------------- packages
pkgs=(slurmctld slurmd slurm-client munge)
[ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd mariadb-server mariadb-client)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Keep package scripts from starting daemons themselves: this script starts (and later stops) its own.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/log/apt.log" 2>&1 ||
        { tail -20 "$DIR/log/apt.log" >&2; [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    log "installed in $((SECONDS - t0)) s"
fi

# ---------------------------------------------------------------------------------------------------- config
HOST=$(hostname -s)
NCPUS=$(nproc)
CPUS=$(( NCPUS > MIN_CPUS ? NCPUS : MIN_CPUS ))
MEM_MB=$(( $(awk '/^MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
[ "$MEM_MB" -gt "$MIN_MEM_MB" ] || MEM_MB=$MIN_MEM_MB

mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && ! grep -qF "$MARK" /etc/slurm/slurm.conf && [ "${DIP_SLURM_FORCE:-0}" != 1 ]; then
    die "/etc/slurm/slurm.conf exists and was not written by this script; refusing to overwrite (DIP_SLURM_FORCE=1)"
fi

if [ "$ACCOUNTING" = 1 ]; then
    acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
    acct_lines="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt"
fi

cat >/etc/slurm/slurm.conf <<EOF
$MARK -- a throwaway single-node test cluster; state in $DIR
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
# Jobs stay visible to squeue/scontrol this long after they end (the plugin's squeue status path checks it).
MinJobAge=300
# A job past its time limit gets SIGTERM, then SIGKILL this many seconds later (the fit checkpoints on SIGTERM).
KillWait=15
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
Waittime=0
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
$acct_lines
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# SLURM 22.05 ignores a count-only GPU and marks the node invalid: give the fake GPU a device file.
cat >/etc/slurm/gres.conf <<EOF
$MARK
NodeName=$HOST Name=gpu Count=1 File=/dev/null
EOF

pid_of() { cat "$1" 2>/dev/null || true; }
record() { printf '%s %s\n' "$1" "$2" >>"$PIDS"; log "started $1 (PID $2)"; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local n=$1 what=$2; shift 2
    for _ in $(seq 1 $((n * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
    die "timed out after ${n}s waiting for $what"
}
: >"$PIDS"

# ---------------------------------------------------------------------------------------------------- munge
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answers on its default socket; using it (not ours to stop)"
else
    # Keep munge on its default socket: sacct/sacctmgr ignore a custom one.
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 "munged" bash -c 'munge -n | unmunge'
    record munged "$(pid_of /run/munge/munged.pid)"
fi

# ---------------------------------------------------------------------------------------------------- accounting
if [ "$ACCOUNTING" = 1 ]; then
    DB="$DIR/mysql"
    if [ ! -d "$DB/mysql" ]; then
        mariadb-install-db --no-defaults --user=root --datadir="$DB" --auth-root-authentication-method=socket \
            --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 || { tail -20 "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    # A private server: own datadir, socket and port, so a system MariaDB (if any) is never touched.
    nohup /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DB" --socket="$DIR/run/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DIR/run/mysqld.pid" \
        --log-error="$DIR/log/mariadb.log" --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
        --performance-schema=OFF --skip-name-resolve >/dev/null 2>&1 &
    record mariadbd $!
    wait_for 60 "MariaDB" mariadb --no-defaults --socket="$DIR/run/mysqld.sock" -e 'SELECT 1'
    mariadb --no-defaults --socket="$DIR/run/mysqld.sock" <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
    cat >/etc/slurm/slurmdbd.conf <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
DebugLevel=info
EOF
    chmod 0600 /etc/slurm/slurmdbd.conf
    rm -f "$DIR/run/slurmdbd.pid"
    /usr/sbin/slurmdbd
    wait_for 30 "slurmdbd" test -s "$DIR/run/slurmdbd.pid"
    record slurmdbd "$(pid_of "$DIR/run/slurmdbd.pid")"
    wait_for 60 "slurmdbd to answer" sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------------------------------------------- slurm
rm -f "$DIR/run/slurmctld.pid" "$DIR/run/slurmd.pid"
# Keep saved state (no -c): job IDs keep counting up, so the accounting database never sees one twice.
/usr/sbin/slurmctld
wait_for 30 "slurmctld" test -s "$DIR/run/slurmctld.pid"
record slurmctld "$(pid_of "$DIR/run/slurmctld.pid")"
/usr/sbin/slurmd
wait_for 30 "slurmd" test -s "$DIR/run/slurmd.pid"
record slurmd "$(pid_of "$DIR/run/slurmd.pid")"

if [ "$ACCOUNTING" = 1 ]; then
    sacctmgr -i add account "$ACCOUNT" Description="dip CI" Organization=dip >/dev/null 2>&1 || true
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
fi

node_idle() { sinfo -h -N -n "$HOST" -o '%T' | grep -qx 'idle'; }
for _ in $(seq 1 120); do
    node_idle && break
    state=$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null || true)
    case "$state" in
        *drain* | *down* | *inval*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
node_idle || { sinfo -N -l >&2 || true; tail -20 "$DIR/log/slurmctld.log" >&2; die "node $HOST did not become idle"; }
acct_note="no accounting"; [ "$ACCOUNTING" = 1 ] && acct_note="account $ACCOUNT, accounting via slurmdbd"
log "up in ${SECONDS} s: node $HOST idle ($CPUS CPUs and ${MEM_MB} MB for the scheduler, gres gpu:1)," \
    "partition $PARTITION, $acct_note; logs in $DIR/log; PIDs in $PIDS"
