#!/usr/bin/env bash
# sge.sh -- a real single-node Son of Grid Engine 8.1.9 (Debian 12 packages
# gridengine-master/-exec/-client) for the end-to-end tests, as root.
#
#   up    install the packages if needed (debconf preseeded), start
#         sge_qmaster + sge_execd on this host, create the parallel
#         environments `make` and `smp` and the cluster queue `all.q`
#         (4 slots), allow jobs of root (min_uid/min_gid 0), make the
#         scheduler run every second, submit a smoke job, and write
#         ${DPDISP_INFRA_DIR:-/tmp/dpdisp-infra}/env-sge.sh.
#   down  qdel every job, stop both daemons (by pid file), remove env-sge.sh.
#         Packages and the cluster configuration stay (next `up` is fast).
#   status  print whether the daemons are up (exit 0 = up).
#
# Idempotent: a running, healthy cluster is left alone. Prints timings.
# Tests: `. /tmp/dpdisp-infra/env-sge.sh` and skip unless DPDISP_SGE=1.
#
# Things that are needed on this VM (and why), see tests/fakes/README.md:
#  * host_aliases: `vm` resolves to 127.0.0.1 whose reverse name is
#    `localhost`, and SGE's commlib refuses clients whose IP resolves to a
#    different name ("access denied (client IP resolved to host name
#    "localhost". This is not identical to clients host name "vm")").
#  * min_uid/min_gid 0: the Debian default config (1000) rejects root's jobs
#    ("your user id 0 is lower than minimum user id 1000 of cluster
#    configuration"); the execd caches the global config, so it is
#    restarted after the change.
set -euo pipefail

INFRA_DIR=${DPDISP_INFRA_DIR:-/tmp/dpdisp-infra}
ENV_FILE=$INFRA_DIR/env-sge.sh
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
QMASTER_PIDFILE=/var/spool/gridengine/qmaster/qmaster.pid
EXECD_SPOOL=/var/spool/gridengine/execd
QUEUE=all.q
SLOTS=4
HOST=$(hostname)

die() { printf 'sge.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'sge.sh: %s\n' "$*"; }
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
elapsed() {
    local d=$(( $(now_us) - $1 ))
    printf '%d.%02ds' $((d / 1000000)) $(( (d % 1000000) / 10000 ))
}

# running PID: the process exists and is not a zombie.
running() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}
# alive PIDFILE COMM: the pid file names a live (non-zombie) process called
# COMM (guards against stale pid files whose pid has been reused).
alive() {
    local pid
    [[ -r $1 ]] || return 1
    read -r pid <"$1" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm ]] || return 1
    [[ $(<"/proc/$pid/comm") == "$2" ]] && running "$pid"
}
execd_pidfile() {
    local f
    for f in "$EXECD_SPOOL"/*/execd.pid; do
        [[ -e $f ]] && alive "$f" sge_execd && { echo "$f"; return 0; }
    done
    return 1
}
# stop PIDFILE COMM: TERM, wait up to 15 s, KILL.
stop() {
    local pid i
    alive "$1" "$2" || return 0
    read -r pid <"$1"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "timed out after ${secs}s waiting for $what"
}
# quiet CMD...: run CMD, show its output only if it fails (qconf reports
# every change on stderr).
quiet() {
    local o
    o=$("$@" 2>&1) || { printf '%s\n' "$o" >&2; return 1; }
}
# edit_conf KIND SED-SCRIPT: qconf -m<KIND> with a non-interactive "editor".
edit_conf() {
    local ed
    ed=$(mktemp /tmp/sge-editor.XXXXXX)
    # shellcheck disable=SC2016  # $1 is for the generated script
    printf '#!/bin/sh\nsed -i -e %q "$1"\n' "$2" >"$ed"
    chmod 700 "$ed"
    EDITOR=$ed quiet qconf "$1" ${3:+"$3"}
    rm -f "$ed"
}

install_packages() {
    local p need=() t0
    for p in gridengine-master gridengine-exec gridengine-client; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || need+=("$p")
    done
    ((${#need[@]})) || return 0
    t0=$(now_us)
    mkdir -p "$INFRA_DIR"
    command -v debconf-set-selections >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debconf-utils >/dev/null
    local pkg
    for pkg in gridengine-common gridengine-master gridengine-client gridengine-exec; do
        printf '%s shared/gridenginecell string default\n' "$pkg"
        printf '%s shared/gridengineconfig boolean true\n' "$pkg"
        printf '%s shared/gridenginemaster string %s\n' "$pkg" "$HOST"
    done | debconf-set-selections
    # The maintainer scripts try to start the daemons through invoke-rc.d;
    # we start them ourselves, so forbid it if nothing else does.
    local created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
        >"$INFRA_DIR/apt-sge.log" 2>&1; then
        ((created_policy)) && rm -f /usr/sbin/policy-rc.d
        tail -n 30 "$INFRA_DIR/apt-sge.log" >&2
        die "apt-get install failed (log: $INFRA_DIR/apt-sge.log)"
    fi
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
    log "installed ${need[*]} in $(elapsed "$t0")"
}

fix_hostnames() {
    # Map the reverse name of our own address (usually `localhost`) to $HOST.
    local ip rev
    ip=$(getent hosts "$HOST" | awk '{print $1; exit}')
    rev=$(getent hosts "$ip" | awk '{print $2; exit}')
    if [[ -n $rev && $rev != "$HOST" ]]; then
        local line="$HOST $rev"
        if [[ ! -e $COMMON/host_aliases ]] || ! grep -qxF "$line" "$COMMON/host_aliases"; then
            echo "$line" >>"$COMMON/host_aliases"
            log "host_aliases: $line"
        fi
    fi
    [[ $(cat "$COMMON/act_qmaster" 2>/dev/null) == "$HOST" ]] || echo "$HOST" >"$COMMON/act_qmaster"
}

start_daemons() {
    local t0
    mkdir -p /var/run/gridengine
    chown sgeadmin:sgeadmin /var/run/gridengine 2>/dev/null || true
    if ! alive "$QMASTER_PIDFILE" sge_qmaster; then
        t0=$(now_us)
        # An execd that outlived its qmaster reconnects to the new one but
        # is never handed jobs again (they sit in `r`/`dr` forever), so
        # restart it together with the qmaster.
        local pf
        if pf=$(execd_pidfile); then
            stop "$pf" sge_execd
            log "stopped the orphaned sge_execd"
        fi
        /usr/sbin/sge_qmaster
        wait_for 30 "sge_qmaster to answer" qconf -sh
        log "sge_qmaster started in $(elapsed "$t0")"
    fi
    configure_cluster
    if ! execd_pidfile >/dev/null; then
        t0=$(now_us)
        /usr/sbin/sge_execd
        wait_for 30 "sge_execd to register" execd_reports_load
        log "sge_execd started in $(elapsed "$t0")"
    fi
}

execd_reports_load() {
    # qhost prints `-` in the LOAD column until the execd has reported.
    qhost -h "$HOST" 2>/dev/null | awk -v h="$HOST" '$1 == h && $7 != "-" {ok=1} END {exit !ok}'
}

configure_cluster() {
    local restart_execd=0 pe f
    qconf -ss 2>/dev/null | grep -qx "$HOST" || quiet qconf -as "$HOST"
    if qconf -sconf global | grep -Eq '^min_(uid|gid) +[1-9]'; then
        edit_conf -mconf 's/^min_uid .*/min_uid                      0/; s/^min_gid .*/min_gid                      0/' global
        restart_execd=1
        log "allowed jobs of root (min_uid/min_gid 0)"
    fi
    if ! qconf -ssconf | grep -Eq '^schedule_interval +0:0:1$'; then
        edit_conf -msconf 's/^schedule_interval .*/schedule_interval                 0:0:1/; s/^flush_submit_sec .*/flush_submit_sec                  1/; s/^flush_finish_sec .*/flush_finish_sec                  1/'
        log "scheduler interval 1s"
    fi
    for pe in make smp; do
        qconf -sp "$pe" >/dev/null 2>&1 && continue
        f=$(mktemp /tmp/sge-pe.XXXXXX)
        cat >"$f" <<EOF
pe_name            $pe
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
        quiet qconf -Ap "$f"
        rm -f "$f"
    done
    if ! qconf -sq "$QUEUE" >/dev/null 2>&1; then
        f=$(mktemp /tmp/sge-q.XXXXXX)
        # Start from the built-in template (qconf -sq with no queue prints
        # it), then set our values.
        qconf -sq | sed -e "s/^qname .*/qname                 $QUEUE/" \
            -e "s/^hostlist .*/hostlist              $HOST/" \
            -e "s/^pe_list .*/pe_list               make smp/" \
            -e "s/^slots .*/slots                 $SLOTS/" \
            -e "s/^load_thresholds .*/load_thresholds       NONE/" \
            -e "s|^shell .*|shell                 /bin/bash|" >"$f"
        quiet qconf -Aq "$f"
        rm -f "$f"
        log "created queue $QUEUE ($SLOTS slots, pe make smp)"
    fi
    # The template's load_thresholds (np_load_avg=1.75) put the queue in
    # alarm state `a` -- jobs then stay `qw` -- whenever the VM is busy.
    if ! qconf -sq "$QUEUE" | grep -Eq '^load_thresholds +NONE$'; then
        quiet qconf -rattr queue load_thresholds NONE "$QUEUE"
        log "queue $QUEUE: load_thresholds NONE"
    fi
    if ((restart_execd)); then
        local pf
        if pf=$(execd_pidfile); then
            stop "$pf" sge_execd
            log "restarted sge_execd to pick up the new global config"
        fi
    fi
}

smoke() {
    local t0 d out
    t0=$(now_us)
    d=$(mktemp -d /tmp/sge-smoke.XXXXXX)
    # qmod -c clears an error state a queue may have from earlier attempts.
    qmod -cq "$QUEUE" >/dev/null 2>&1 || true
    out=$(cd "$d" && printf '#!/bin/bash\necho sge-smoke-ok\n' | timeout 60 qsub -sync y -cwd -N smoke -o "$d/out" -j y 2>&1) \
        || { echo "$out" >&2; rm -rf "$d"; die "smoke job failed"; }
    grep -q sge-smoke-ok "$d/out" || { cat "$d/out" >&2; rm -rf "$d"; die "smoke job produced no output"; }
    rm -rf "$d"
    log "smoke job ran in $(elapsed "$t0")"
}

write_env() {
    mkdir -p "$INFRA_DIR"
    local tmp
    tmp=$(mktemp "$INFRA_DIR/.env-sge.XXXXXX")
    {
        echo "# Generated by tests/infra/sge.sh up -- source it: . $ENV_FILE"
        echo "export DPDISP_SGE=1"
        echo "export SGE_ROOT=$SGE_ROOT"
        echo "export SGE_CELL=$SGE_CELL"
        echo "export DPDISP_SGE_QUEUE=$QUEUE"
        echo "export DPDISP_SGE_PE=smp"
        echo "export DPDISP_SGE_HOST=$HOST"
    } >"$tmp"
    chmod 644 "$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

healthy() {
    alive "$QMASTER_PIDFILE" sge_qmaster && execd_pidfile >/dev/null \
        && qconf -sq "$QUEUE" >/dev/null 2>&1
}

cmd_up() {
    [[ $EUID -eq 0 ]] || die "must run as root"
    local t0
    t0=$(now_us)
    if healthy; then
        write_env
        log "already up ($(elapsed "$t0")); env: $ENV_FILE"
        return 0
    fi
    install_packages
    fix_hostnames
    start_daemons
    smoke
    write_env
    log "up in $(elapsed "$t0"); env: $ENV_FILE"
}

cmd_down() {
    [[ $EUID -eq 0 ]] || die "must run as root"
    local t0 pf i
    t0=$(now_us)
    rm -f "$ENV_FILE"
    if alive "$QMASTER_PIDFILE" sge_qmaster; then
        qdel -f -u '*' >/dev/null 2>&1 || true
        for ((i = 0; i < 50; i++)); do
            [[ -z $(qstat -u '*' 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    if pf=$(execd_pidfile); then stop "$pf" sge_execd; fi
    stop "$QMASTER_PIDFILE" sge_qmaster
    log "down in $(elapsed "$t0")"
}

cmd_status() {
    if healthy; then log "up"; return 0; fi
    log "down"
    return 1
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: ${0##*/} up|down|status" >&2; exit 2 ;;
esac
