#!/usr/bin/env bash
# down.sh -- stop what tests/infra/up.sh started, by pid file. Idempotent and
# never fails because something is already down. Packages stay installed;
# the test user, its keys, password and TOTP secret stay too (so the next
# up.sh is fast and env.sh values are stable) unless --purge is given.
#
# Usage: down.sh [--purge] [slurm] [sshd]    (no component = both)
#   --purge   also delete the user dpdtest (with its home) and the state dir
set -uo pipefail   # no -e: teardown carries on past individual failures

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

# shellcheck disable=SC2317  # called from parse_components
usage() { echo "usage: ${0##*/} [--purge] [slurm] [sshd]   (no component = both)"; }

PURGE=0
args=()
for a in "$@"; do
    if [[ $a == --purge ]]; then PURGE=1; else args+=("$a"); fi
done
parse_components "${args[@]}"
[[ $EUID -eq 0 ]] || die "must run as root"

stop_slurm() {
    local t0 i ids
    t0=$(now_us)
    if pid_alive "$SLURMCTLD_PIDFILE" slurmctld; then
        # Cancel every job so that no job step outlives the cluster, then give
        # the processes a few seconds to go (state CG -> gone).
        ids=$(squeue --noheader --format='%i' 2>/dev/null | tr '\n' ' ')
        if [[ -n ${ids// /} ]]; then
            # shellcheck disable=SC2086  # word splitting of the id list is wanted
            scancel $ids 2>/dev/null
            for ((i = 0; i < 100; i++)); do
                [[ -z $(squeue --noheader --format='%i' --states=R,CG 2>/dev/null) ]] && break
                sleep 0.1
            done
        fi
    fi
    stop_pidfile "$SLURMD_PIDFILE" slurmd
    stop_pidfile "$SLURMCTLD_PIDFILE" slurmctld
    stop_pidfile "$MUNGED_PIDFILE" munged 5
    rm -f "$INFRA_DIR/env.slurm.sh"
    echo "slurm: down in $(elapsed "$t0")"
}

stop_sshd() {
    local t0 name comm
    t0=$(now_us)
    for name in "${SSHD_INSTANCES[@]}"; do
        if [[ $name == totp ]]; then comm=sshd-totp; else comm=sshd; fi
        # Stops the listener; connections still open end with their clients.
        stop_pidfile "$INFRA_DIR/$name/sshd.pid" "$comm" 5
    done
    rm -f "$TOTP_PAM_FILE" "$INFRA_DIR/env.sshd.sh"
    echo "sshd: down in $(elapsed "$t0")"
}

if [[ -d $INFRA_DIR ]]; then
    INFRA_DIR=$(cd "$INFRA_DIR" && pwd)
fi
((WANT_SLURM)) && stop_slurm
((WANT_SSHD)) && stop_sshd
[[ -d $INFRA_DIR ]] && write_env

if ((PURGE && WANT_SSHD)); then
    if id "$SSH_USER" >/dev/null 2>&1; then
        userdel --remove "$SSH_USER" 2>/dev/null \
            || warn "could not delete user $SSH_USER (processes still running as it?)"
    fi
    # Only remove the state dir when no component (ours or another script's
    # env*.sh) still needs it.
    compgen -G "$INFRA_DIR/env*.sh" >/dev/null || rm -rf "$INFRA_DIR"
fi
exit 0
