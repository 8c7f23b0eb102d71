#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for tests, with declared (fake) GPUs.
#
#   tests/slurm/cluster.sh start STATE_DIR          start the daemons, wait for an idle node
#   tests/slurm/cluster.sh stop STATE_DIR           stop the daemons this script started, by PID
#   tests/slurm/cluster.sh run STATE_DIR CMD [ARG...]   start, run CMD, always stop (trap on EXIT)
#
# Configuration, state, logs and PID files live in STATE_DIR (munged's in /run/munge and /var/log/munge);
# clients find the cluster through
# SLURM_CONF=STATE_DIR/slurm.conf (printed by `start`). Inside jobs, snakemake's jobstep drops SLURM_CONF
# before its nested `srun`, which then reads the default /etc/slurm/slurm.conf: while the cluster runs, that
# path is a symbolic link to STATE_DIR/slurm.conf (start refuses to replace a file that is not such a link;
# stop removes the link). Exit status 3: another SLURM configuration is in place there.
# Environment:
#   GPU_TYPE=<model>      declare the GPUs with this type (so `--gpus=<model>:1` schedules); default untyped
#   GPU_COUNT=1           number of fake GPUs (1-5), each on a placeholder character device
#   PARTITIONS="a b"      partitions to create, all on the one node; the first is the default (default "cpu gpu")
#   MAX_TIME=INFINITE     every partition's MaxTime (a SLURM time such as 2-00:00:00)
#   SLURMCTLD_PORT, SLURMD_PORT   (default 6817, 6818)
#   READY_TIMEOUT=30      seconds to wait for the node to become idle
#   MIN_JOB_AGE=3600      seconds a finished job stays visible to squeue/scontrol (at least 600, see below)
#   WITH_ACCOUNTING=1     also run MariaDB and slurmdbd (state in STATE_DIR), so that sacct works; the cluster
#                         is registered with sacctmgr (needs WITH_ACCOUNTING=1 tests/slurm/install.sh)
#   MARIADB_PORT, SLURMDBD_PORT   (default 6820, 6819; MariaDB listens on 127.0.0.1 only)
# Needs root and tests/slurm/install.sh's packages. Facts behind each setting: ../shared/SLURM.md.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

usage() {
    sed -n '2,/^# Needs root/p' "$0" >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
action=$1
state_dir=$(realpath -m "$2")
shift 2
pid_list="$state_dir/daemons.pids" # "name pid" per daemon, "link path" per link made, in start order
export SLURM_CONF="$state_dir/slurm.conf"
default_conf=/etc/slurm/slurm.conf

log() { echo "cluster.sh: $*" >&2; }

write_config() {
    local cpus memory_mb gres_node gres_type_field partitions default_flag partition gpu_count gpu_files
    cpus=$(nproc)
    # RealMemory above the real memory makes the node INVAL: declare 80 % of it.
    memory_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    gpu_count=${GPU_COUNT:-1}
    # gres.conf needs one existing device file per GPU; these character devices exist everywhere.
    local placeholder_devices=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    if ! [[ "$gpu_count" =~ ^[1-5]$ ]]; then
        log "GPU_COUNT=$gpu_count: must be 1 to ${#placeholder_devices[@]}"
        return 1
    fi
    gpu_files=$(IFS=,; echo "${placeholder_devices[*]:0:gpu_count}")
    if [[ -n "${GPU_TYPE:-}" ]]; then
        gres_node="gpu:${GPU_TYPE}:${gpu_count}"
        gres_type_field="Type=${GPU_TYPE} "
    else
        gres_node="gpu:${gpu_count}"
        gres_type_field=""
    fi
    # A fresh controller state every start: job IDs and records of an earlier cluster do not leak in.
    rm -rf "$state_dir/ctld" "$state_dir/spool"
    mkdir -p "$state_dir/ctld" "$state_dir/spool"
    cat >"$SLURM_CONF" <<CONF
ClusterName=divpref-test
SlurmctldHost=localhost
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
SlurmctldLogFile=$state_dir/slurmctld.log
SlurmdLogFile=$state_dir/slurmd.log
# No cgroups in containers: track processes by parent PID, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
MpiDefault=none
# Without a default a job takes the whole node's memory and jobs run one at a time.
DefMemPerCPU=500
# The executor plugin's squeue status path needs finished jobs to stay visible (>= 600 s); the tests read
# every job's record after the run, so keep them for the whole test session.
MinJobAge=${MIN_JOB_AGE:-3600}
$(accounting_settings)
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb Gres=$gres_node State=UNKNOWN
CONF
    read -r -a partitions <<<"${PARTITIONS:-cpu gpu}"
    default_flag="YES"
    for partition in "${partitions[@]}"; do
        echo "PartitionName=$partition Nodes=localhost Default=$default_flag MaxTime=${MAX_TIME:-INFINITE} State=UP" >>"$SLURM_CONF"
        default_flag="NO"
    done
    # A GPU-less node accepts GPU jobs when its GPUs are declared on placeholder device files.
    cat >"$state_dir/gres.conf" <<CONF
AutoDetect=off
NodeName=localhost Name=gpu ${gres_type_field}File=${gpu_files}
CONF
}

with_accounting() { [[ "${WITH_ACCOUNTING:-0}" == 1 ]]; }

# slurm.conf's accounting lines: slurmdbd with WITH_ACCOUNTING=1, none otherwise (sacct then fails).
accounting_settings() {
    if with_accounting; then
        printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=localhost \
            "AccountingStoragePort=${SLURMDBD_PORT:-6819}"
    else
        echo AccountingStorageType=accounting_storage/none
    fi
}

# Wait until a PID file names a live process; record it.
record_daemon() {
    local name=$1 pid_file=$2 pid="" waited=0
    while [[ $waited -lt 100 ]]; do
        if [[ -s "$pid_file" ]]; then
            pid=$(<"$pid_file")
            if kill -0 "$pid" 2>/dev/null; then
                echo "$name $pid" >>"$pid_list"
                log "$name running as PID $pid"
                return 0
            fi
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    log "$name did not start (no live PID in $pid_file); see the logs in $state_dir"
    return 1
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running; reusing it (it will not be stopped)"
        return 0
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    # munged runs as user munge and must reach its files: the state directory may sit under a private
    # (mode 0700) temporary folder, so munged keeps to its own folders.
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid --log-file=/var/log/munge/munged.log
    record_daemon munged /run/munge/munged.pid
}

# Poll `$@` every 0.2 s until it succeeds, for at most $1 seconds.
wait_until() {
    local seconds=$1 deadline
    shift
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [[ $SECONDS -ge $deadline ]]; then
            log "gave up after $seconds s waiting for: $*"
            return 1
        fi
        sleep 0.2
    done
}

# MariaDB with its data, socket and logs in STATE_DIR, on 127.0.0.1, with a database user for slurmdbd.
start_mariadb() {
    local data_dir="$state_dir/mariadb" socket="$state_dir/mariadb.sock"
    rm -rf "$data_dir"
    mariadb-install-db --user=root --datadir="$data_dir" --skip-test-db >"$state_dir/mariadb-install.log" 2>&1
    mariadbd --user=root --datadir="$data_dir" --socket="$socket" --pid-file="$state_dir/mariadb.pid" \
        --bind-address=127.0.0.1 --port="${MARIADB_PORT:-6820}" --skip-name-resolve \
        --log-error="$state_dir/mariadb.log" >/dev/null 2>&1 &
    record_daemon mariadbd "$state_dir/mariadb.pid"
    wait_until 60 mariadb-admin --socket="$socket" ping
    mariadb --socket="$socket" -u root <<SQL
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'divpref-test';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

# slurmdbd on MariaDB; slurmdbd.conf sits beside slurm.conf, mode 0600, owned by SlurmUser (root).
start_slurmdbd() {
    local dbd_conf="$state_dir/slurmdbd.conf"
    (
        umask 077
        cat >"$dbd_conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=${SLURMDBD_PORT:-6819}
SlurmUser=root
PidFile=$state_dir/slurmdbd.pid
LogFile=$state_dir/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=${MARIADB_PORT:-6820}
StorageUser=slurm
StoragePass=divpref-test
StorageLoc=slurm_acct_db
CONF
    )
    rm -f "$state_dir/slurmdbd.pid"
    slurmdbd
    record_daemon slurmdbd "$state_dir/slurmdbd.pid"
    wait_until 60 sacctmgr -n list cluster
    # Registering the cluster also creates the root account and user that root's jobs are accounted to.
    sacctmgr -i add cluster divpref-test >/dev/null
}

wait_for_idle_node() {
    local deadline=$((SECONDS + ${READY_TIMEOUT:-30})) states
    while [[ $SECONDS -lt $deadline ]]; do
        states=$(sinfo -h -o %T 2>/dev/null | sort -u | tr '\n' ' ')
        if [[ "$states" == "idle " ]]; then
            log "node idle after $SECONDS s"
            return 0
        fi
        sleep 0.5
    done
    log "node not idle after ${READY_TIMEOUT:-30} s (sinfo states: ${states:-none}); see $state_dir/*.log"
    return 1
}

# Point /etc/slurm/slurm.conf at this cluster's config, unless another config is there.
link_default_config() {
    if [[ -e "$default_conf" || -L "$default_conf" ]] && [[ "$(readlink "$default_conf")" != "$SLURM_CONF" ]]; then
        if [[ ! -L "$default_conf" ]] || [[ -e "$(readlink "$default_conf")" ]]; then
            log "$default_conf exists and is not this cluster's: refusing to replace it"
            return 3
        fi
    fi
    mkdir -p "$(dirname "$default_conf")"
    ln -sfn "$SLURM_CONF" "$default_conf"
    echo "link $default_conf" >>"$pid_list"
}

start_cluster() {
    if [[ $(id -u) != 0 ]]; then
        log "starting the SLURM daemons needs root"
        return 1
    fi
    if [[ -s "$pid_list" ]]; then
        log "$pid_list exists: a cluster from this state directory may still run; stop it first"
        return 1
    fi
    mkdir -p "$state_dir"
    : >"$pid_list"
    # Until the node is idle, any failure stops whatever was started.
    trap 'stop_cluster' EXIT
    write_config
    link_default_config
    start_munge
    if with_accounting; then
        start_mariadb
        start_slurmdbd
    fi
    slurmctld -f "$SLURM_CONF" -i
    record_daemon slurmctld "$state_dir/slurmctld.pid"
    # The host name is not "localhost": slurmd must be told which node it is.
    slurmd -f "$SLURM_CONF" -N localhost
    record_daemon slurmd "$state_dir/slurmd.pid"
    wait_for_idle_node
    trap - EXIT
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_pid() {
    local name=$1 pid=$2 waited=0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [[ $waited -lt 100 ]]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (PID $pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (PID $pid)"
}

stop_cluster() {
    local lines index name pid
    [[ -f "$pid_list" ]] || return 0
    # Cancel remaining jobs while the controller still answers, so no job step outlives the cluster.
    if grep -q '^slurmctld ' "$pid_list"; then
        timeout 10 scancel --quiet --user=root 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while [[ -n $(timeout 5 squeue -h -t PENDING,RUNNING,COMPLETING -o %i 2>/dev/null) ]] \
            && [[ $SECONDS -lt $deadline ]]; do
            sleep 0.5
        done
    fi
    mapfile -t lines <"$pid_list"
    for ((index = ${#lines[@]} - 1; index >= 0; index--)); do
        read -r name pid <<<"${lines[index]}"
        if [[ "$name" == link ]]; then
            # $pid is the link's path here; remove it only while it still points at this cluster.
            [[ "$(readlink "$pid")" == "$SLURM_CONF" ]] && rm -f "$pid"
        else
            stop_pid "$name" "$pid"
        fi
    done
    rm -f "$pid_list"
}

case "$action" in
start)
    start_cluster
    ;;
stop)
    stop_cluster
    ;;
run)
    [[ $# -ge 1 ]] || usage
    start_cluster >/dev/null
    trap 'stop_cluster' EXIT
    "$@"
    ;;
*)
    usage
    ;;
esac
