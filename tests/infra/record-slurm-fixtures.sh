#!/usr/bin/env bash
# record-slurm-fixtures.sh -- record real Slurm command outputs as test
# fixtures in tests/fixtures/scheduler_output/slurm/ (see the README there).
#
# Needs the cluster and the test user: run `tests/infra/up.sh` first. Every
# command runs as the test user (as dpdispatcher would over SSH), from a
# scratch directory in its home. For each fixture NAME it writes
#   NAME.cmd     the exact command line (job ids are the real ones)
#   NAME.stdout  NAME.stderr  NAME.rc (exit status)
# plus recording.txt (versions, date, which job id played which role,
# command durations). It stops and restarts slurmctld on the way (outage
# fixtures) and takes 2-3 minutes because it waits for a finished job to be
# purged (MinJobAge). Usage: record-slurm-fixtures.sh [OUTPUT_DIR]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

OUT=${1:-$HERE/../fixtures/scheduler_output/slurm}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[[ $EUID -eq 0 ]] || die "must run as root"
id "$SSH_USER" >/dev/null 2>&1 || die "user $SSH_USER missing: run tests/infra/up.sh first"
pid_alive "$SLURMCTLD_PIDFILE" slurmctld || die "slurmctld not running: run tests/infra/up.sh first"

WORK=$SSH_HOME/fixture-run
rm -rf "$WORK"
install -d -o "$SSH_USER" -g "$SSH_USER" "$WORK"
NOTES=$OUT/recording.txt
UNKNOWN_ID=999999   # never reached by this cluster's job counter
FMT="--noheader --format='%i %t'"   # the status format of our Slurm machine

# as_user CMD: run CMD (a shell string) as the test user in $WORK.
as_user() { su - "$SSH_USER" -c "cd $WORK && $1"; }

# rec NAME CMD: record one fixture. Echoes the stdout (for capturing ids).
rec() {
    local name=$1 cmd=$2 rc=0 t0
    t0=$(now_us)
    as_user "$cmd" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" || rc=$?
    printf '%s\n' "$cmd" >"$OUT/$name.cmd"
    printf '%s\n' "$rc" >"$OUT/$name.rc"
    printf '%-36s rc=%-3s %7s  %s\n' "$name" "$rc" "$(elapsed "$t0")" "$cmd" >>"$NOTES.cmds"
    cat "$OUT/$name.stdout"
}

# expect NAME REGEX: warn when a fixture's stdout+stderr does not match the
# state it was meant to capture (timing on a slow machine).
expect() {
    grep -Eq "$2" "$OUT/$1.stdout" "$OUT/$1.stderr" \
        || warn "fixture $1 does not match /$2/: $(cat "$OUT/$1.stdout" "$OUT/$1.stderr")"
}

# state_of ID: current short state letter(s) of a job, "" if unknown.
state_of() { squeue --noheader --format='%t' --states=all --jobs="$1" 2>/dev/null | head -n 1; }

# wait_state ID REGEX [TIMEOUT_S]
wait_state() {
    local i
    for ((i = 0; i < ${3:-60} * 10; i++)); do
        [[ $(state_of "$1") =~ ^($2)$ ]] && return 0
        sleep 0.1
    done
    die "job $1 did not reach state $2 (now: '$(state_of "$1")')"
}

# ------------------------------------------------------------ job scripts
write_script() {   # write_script NAME BODY
    printf '#!/bin/bash\n#SBATCH --job-name=fx-%s\n#SBATCH --output=%s.%%j.out\n%s\n' \
        "$1" "$1" "$2" >"$WORK/$1.sh"
    chown "$SSH_USER:" "$WORK/$1.sh"
}
write_script sleep 'sleep 300'
write_script quick 'echo done'
write_script fail 'exit 3'
# Ignores SIGTERM (inherited by sleep), so after scancel the job stays
# COMPLETING (CG) until KillWait (30 s) expires and SIGKILL follows.
write_script stubborn "trap '' TERM; echo ready; sleep 300"
write_script array 'sleep 300'

rm -f "$OUT"/*.cmd "$OUT"/*.stdout "$OUT"/*.stderr "$OUT"/*.rc "$NOTES" "$NOTES.cmds"

# ------------------------------------------------------------ submissions
RUN=$(rec sbatch_plain "sbatch --parsable sleep.sh")
ARR=$(rec sbatch_array "sbatch --parsable --array=0-3%2 array.sh")
GPU=$(rec sbatch_partition_gpu "sbatch --parsable --partition=gpu sleep.sh")
HELD=$(rec sbatch_held "sbatch --parsable --hold sleep.sh")
BEGIN=$(as_user "sbatch --parsable --begin=now+3600 sleep.sh")
QUICK=$(as_user "sbatch --parsable quick.sh")
FAIL=$(as_user "sbatch --parsable fail.sh")
CANC=$(as_user "sbatch --parsable --hold sleep.sh")
STUB=$(as_user "sbatch --parsable stubborn.sh")
rec sbatch_bad_partition "sbatch --parsable --partition=nosuch sleep.sh" >/dev/null
# Accepted (!): the job then pends forever with reason PartitionConfig.
TOOBIG=$(rec sbatch_too_many_cpus "sbatch --parsable --cpus-per-task=64 sleep.sh")

wait_state "$RUN" R
wait_state "$QUICK" CD
T_QUICK_DONE=$(now_us)
wait_state "$FAIL" F
as_user "scancel $CANC"
wait_state "$CANC" CA
wait_state "$STUB" R
# Let the job's shell install its trap before it is cancelled.
for ((i = 0; i < 100; i++)); do
    [[ -s $WORK/stubborn.$STUB.out ]] && break
    sleep 0.1
done
as_user "scancel $STUB"
wait_state "$STUB" CG 10

# ------------------------------------------------------------ squeue states
rec squeue_completing "squeue $FMT --jobs=$STUB" >/dev/null;          expect squeue_completing " CG$"
rec squeue_running "squeue $FMT --jobs=$RUN" >/dev/null;               expect squeue_running " R$"
rec squeue_pending_held "squeue $FMT --jobs=$HELD" >/dev/null;         expect squeue_pending_held " PD$"
rec squeue_pending_begin "squeue $FMT --jobs=$BEGIN" >/dev/null;       expect squeue_pending_begin " PD$"
rec squeue_array "squeue $FMT --jobs=$ARR" >/dev/null;                 expect squeue_array "_"
rec squeue_too_many_cpus_default_format "squeue --jobs=$TOOBIG" >/dev/null
expect squeue_too_many_cpus_default_format "PartitionConfig"
# Finished jobs (within MinJobAge): NOT listed unless --states=all is given.
rec squeue_completed "squeue $FMT --jobs=$QUICK" >/dev/null
rec squeue_completed_states_all "squeue $FMT --states=all --jobs=$QUICK" >/dev/null
expect squeue_completed_states_all " CD$"
rec squeue_failed_states_all "squeue $FMT --states=all --jobs=$FAIL" >/dev/null
expect squeue_failed_states_all " F$"
rec squeue_cancelled_states_all "squeue $FMT --states=all --jobs=$CANC" >/dev/null
expect squeue_cancelled_states_all " CA$"
ALL="$RUN,$ARR,$GPU,$HELD,$BEGIN,$QUICK,$FAIL,$CANC,$STUB"
rec squeue_many "squeue $FMT --jobs=$ALL" >/dev/null
rec squeue_many_states_all "squeue $FMT --states=all --jobs=$ALL" >/dev/null
rec squeue_default_format "squeue --states=all --jobs=$ALL" >/dev/null
rec squeue_unknown_among_known "squeue $FMT --jobs=$RUN,$UNKNOWN_ID" >/dev/null
rec squeue_unknown_among_known_states_all "squeue $FMT --states=all --jobs=$RUN,$UNKNOWN_ID" >/dev/null
rec squeue_unknown_single "squeue $FMT --jobs=$UNKNOWN_ID" >/dev/null
rec squeue_unknown_single_states_all "squeue $FMT --states=all --jobs=$UNKNOWN_ID" >/dev/null

# ------------------------------------------------------------ other commands
rec sacct_disabled "sacct --jobs=$QUICK" >/dev/null
rec scancel_unknown "scancel $UNKNOWN_ID" >/dev/null
# Silent with exit status 0; only -v shows the error.
rec scancel_unknown_verbose "scancel --verbose $UNKNOWN_ID" >/dev/null
rec scancel_completed "scancel $QUICK" >/dev/null
rec scancel_running "scancel $GPU" >/dev/null
rec scancel_pending "scancel $HELD" >/dev/null

# ------------------------------------------------------------ controller outage
stop_pidfile "$SLURMCTLD_PIDFILE" slurmctld
rec squeue_ctld_down "squeue $FMT --jobs=$RUN" >/dev/null
rec sbatch_ctld_down "sbatch --parsable sleep.sh" >/dev/null
rec scancel_ctld_down "scancel $RUN" >/dev/null
rec sacct_ctld_down "sacct --jobs=$RUN" >/dev/null
/usr/sbin/slurmctld
for ((i = 0; i < 300; i++)); do
    squeue --noheader --jobs="$RUN" >/dev/null 2>&1 && break
    sleep 0.1
done
rec squeue_after_ctld_restart "squeue $FMT --jobs=$RUN,$ARR" >/dev/null
expect squeue_after_ctld_restart "^$RUN R$"

# ------------------------------------------------------------ purged jobs
# Wait until the finished job has been purged (MinJobAge=60 plus the purge
# interval), then ask for it again: "gone" looks like "unknown"?
for ((i = 0; i < 2400; i++)); do
    [[ -z $(state_of "$QUICK") ]] && break
    sleep 0.1
done
[[ -z $(state_of "$QUICK") ]] || die "job $QUICK not purged after 240 s"
purge_after=$(elapsed "$T_QUICK_DONE")
rec squeue_gone_single "squeue $FMT --jobs=$QUICK" >/dev/null
rec squeue_gone_single_states_all "squeue $FMT --states=all --jobs=$QUICK" >/dev/null
rec squeue_gone_among_known "squeue $FMT --jobs=$RUN,$QUICK" >/dev/null
rec squeue_gone_among_known_states_all "squeue $FMT --states=all --jobs=$RUN,$QUICK" >/dev/null

# ------------------------------------------------------------ clean up
role() { printf '  %-7s %s\n' "$1" "$2"; }
as_user "scancel $RUN $ARR $BEGIN $STUB $TOOBIG" || true
{
    echo "Recorded by tests/infra/record-slurm-fixtures.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "Debian $(cat /etc/debian_version); $(dpkg-query -W -f='${Package} ${Version}' slurm-wlm);" \
        "$(sbatch --version); $(dpkg-query -W -f='${Package} ${Version}' munge)"
    echo "Node: CPUs=$(nproc), partitions normal (default) and gpu, OverSubscribe=FORCE:4," \
        "MinJobAge=60, accounting_storage/none. Commands run as user $SSH_USER."
    echo
    echo "Job ids and their role:"
    role "$RUN" "sleep.sh, RUNNING (R) for the whole recording"
    role "$ARR" "--array=0-3%2 of sleep 300 (2 elements R, 2 PD)"
    role "$GPU" "sleep.sh in partition gpu, R, then scancel'ed (scancel_running)"
    role "$HELD" "--hold, PENDING (PD, reason JobHeldUser), then scancel'ed (scancel_pending)"
    role "$BEGIN" "--begin=now+3600, PENDING (PD, reason BeginTime)"
    role "$QUICK" "quick.sh, COMPLETED (CD); gone from squeue ~$purge_after after it was seen CD"
    role "$FAIL" "fail.sh (exit 3), FAILED (F)"
    role "$CANC" "--hold then scancel, CANCELLED (CA)"
    role "$TOOBIG" "--cpus-per-task=64 on a 2-CPU node: accepted, PD (PartitionConfig)"
    role "$STUB" "stubborn.sh (ignores SIGTERM), scancel'ed: COMPLETING (CG) for KillWait=30s"
    role "$UNKNOWN_ID" "never existed"
    echo
    echo "Commands in recording order (name, exit status, duration, command):"
    cat "$NOTES.cmds"
} >"$NOTES"
rm -f "$NOTES.cmds"
rm -rf "$WORK"
echo "fixtures: recorded $(find "$OUT" -name '*.cmd' | wc -l) commands into $OUT"
