#!/usr/bin/env bash
# scripts/lib.sh: what scripts/demo, scripts/smoke and scripts/slow-reader share.
# Sourced, never run:
#
#   # shellcheck source=scripts/lib.sh disable=SC1091
#   . "$(dirname "$0")/lib.sh"
#   lib_init NAME          # cd to the repo root, temp dir, traps, checks
#
# talkd runs on an ephemeral loopback port with its console on files in the temp
# dir: $TALK_TMP/console (stdout: "Connected to", "From", "Dropped"...) and
# $TALK_TMP/log (stderr: "talkd: listening on 127.0.0.1:PORT (BACKEND)"). Its stdin is a
# FIFO held open here, so operator_says can type on its console.
#
# A client NAME is an `nc.openbsd -N` inside timeout(1), reading its stdin from a
# FIFO held open here (say NAME LINE... writes to it; hang_up NAME closes it, and
# nc half-closes) and writing what it receives to $TALK_TMP/NAME.out.
#
# Waiting is always on readiness and always bounded: wait_for_file_line and
# wait_for_text look at a file every 50 ms until it holds a line, or give up.
# On exit, every process started below the script is ended and the temp dir goes.
#
# Environment: TALKD (default ./talkd, relative to the repo root), WAIT_SECONDS
# (default 5, how long one wait_for_* waits), NC_SECONDS (default 10, the bound
# on each nc).
#
# shellcheck disable=SC2034  # TALKD_STATUS and the like are for the scripts that source this

# ---- state ----

PROG=${PROG:-talk}
TALK_TMP=
TALKD_PID=
TALKD_STATUS=
PORT=
OPERATOR_FD=
HELD_FDS=() # descriptors this shell holds open; children close them first
declare -A CLIENT_FD=() CLIENT_PID=()
: "${WAIT_SECONDS:=5}" "${NC_SECONDS:=10}"

# ---- messages ----

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}

# Indents a file's last lines for a message: show_tail FILE [N]
show_tail() {
    local file=$1 n=${2:-8}
    if [[ ! -s $file ]]; then
        echo "    (nothing)"
        return
    fi
    tail -n "$n" "$file" | cut -c 1-200 | sed 's/^/    | /'
}

# ---- set up and clean up ----

# lib_init NAME: the caller's name for messages; cd to the repo root; TALKD
# checked; a temp dir; cleanup on exit, SIGINT and SIGTERM.
lib_init() {
    PROG=$1
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || die "cannot cd to the repo root"
    : "${TALKD:=./talkd}"
    [[ -x $TALKD ]] || die "no executable talkd at $TALKD (run make, or set TALKD)"
    command -v nc.openbsd >/dev/null || die "nc.openbsd is missing (apt-get install netcat-openbsd)"
    command -v timeout >/dev/null || die "timeout(1) is missing (coreutils)"
    TALK_TMP=$(mktemp -d "${TMPDIR:-/tmp}/talk-$PROG.XXXXXX") || die "mktemp failed"
    trap lib_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# In a child (a subshell about to exec): drop the descriptors this shell holds,
# so that closing one here really ends that client's input.
release_fds() {
    local fd
    for fd in "${HELD_FDS[@]}"; do
        exec {fd}>&-
    done
}

# forget_fd FD: close a descriptor this shell holds.
forget_fd() {
    local fd=$1 i
    exec {fd}>&-
    for i in "${!HELD_FDS[@]}"; do
        [[ ${HELD_FDS[i]} == "$fd" ]] && unset 'HELD_FDS[i]'
    done
    return 0
}

# The live processes below this shell (not the subshell that asks, nor zombies).
descendants() {
    local self=$BASHPID
    ps -e -o pid= -o ppid= -o stat= | awk -v root="$$" -v self="$self" '
        $3 !~ /^Z/ { parent[$1] = $2; pids[++n] = $1 }
        END {
            for (i = 1; i <= n; i++) {
                p = pids[i]
                mine = 0
                for (q = parent[p]; q != "" && q > 1; q = parent[q]) {
                    if (q == self) break
                    if (q == root) { mine = 1; break }
                }
                if (mine && p != self) print p
            }
        }'
}

# running PID: true while PID is alive and not a zombie waiting to be reaped.
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $st && $st != Z* ]]
}

exited() { ! running "$1"; }

# stop_talkd [SECONDS]: SIGTERM, then wait (bounded) for a graceful exit; sets
# TALKD_STATUS to its exit status (or "killed" if it had to be killed).
stop_talkd() {
    local secs=${1:-5} i
    [[ -n $TALKD_PID ]] || return 0
    kill -TERM "$TALKD_PID" 2>/dev/null || true
    for ((i = 0; i < secs * 20; i++)); do
        running "$TALKD_PID" || break
        sleep 0.05
    done
    if running "$TALKD_PID"; then
        kill -KILL "$TALKD_PID" 2>/dev/null || true
        wait "$TALKD_PID" 2>/dev/null || true
        TALKD_STATUS=killed
    else
        TALKD_STATUS=0
        wait "$TALKD_PID" 2>/dev/null || TALKD_STATUS=$?
    fi
    TALKD_PID=
    if [[ -n $OPERATOR_FD ]]; then
        forget_fd "$OPERATOR_FD"
        OPERATOR_FD=
    fi
}

# On exit: talkd gets SIGTERM (and time to stop), then whatever else still runs
# below this shell (nc, timeout, generators) gets SIGTERM, and SIGKILL if it lingers.
lib_cleanup() {
    local rc=$? fd pids i
    trap - EXIT INT TERM
    for fd in "${HELD_FDS[@]}"; do
        exec {fd}>&-
    done
    HELD_FDS=()
    OPERATOR_FD=
    CLIENT_FD=()
    stop_talkd 3 >/dev/null 2>&1 || true
    pids=$(descendants)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086 # a list of pids
        kill -TERM $pids 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            pids=$(descendants)
            [[ -z $pids ]] && break
            sleep 0.05
        done
        # shellcheck disable=SC2086 # a list of pids
        [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
        wait 2>/dev/null || true
    fi
    [[ -n $TALK_TMP && -d $TALK_TMP ]] && rm -rf "$TALK_TMP"
    exit "$rc"
}

# ---- waiting ----

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# to_us SECONDS: seconds (2, 0.5, 1.25) in microseconds.
to_us() {
    local int=${1%%.*} frac=000000
    [[ $1 == *.* ]] && frac=${1#*.}000000
    echo $((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

# wait_until SECONDS COMMAND...: runs COMMAND every $POLL_INTERVAL seconds (default
# 0.05) until it succeeds (status 0) or SECONDS (a decimal number) have passed
# (status 1). With 0 seconds, COMMAND runs once.
wait_until() {
    local end
    end=$(($(now_us) + $(to_us "$1")))
    shift
    while :; do
        "$@" && return 0
        (($(now_us) < end)) || return 1
        sleep "${POLL_INTERVAL:-0.05}"
    done
}

# count_lines FILE LINE: how many lines of FILE are exactly LINE.
count_lines() { grep -cxF -- "$2" "$1" 2>/dev/null || true; }
# count_text FILE TEXT: how many lines of FILE contain TEXT.
count_text() { grep -cF -- "$2" "$1" 2>/dev/null || true; }

has_lines() { (($(count_lines "$1" "$2") >= $3)); }
has_text() { (($(count_text "$1" "$2") >= $3)); }

# wait_for_file_line FILE LINE [COUNT [SECONDS]]: until FILE holds LINE (the whole
# line) COUNT times.
wait_for_file_line() { wait_until "${4:-$WAIT_SECONDS}" has_lines "$1" "$2" "${3:-1}"; }
# wait_for_text FILE TEXT [COUNT [SECONDS]]: until COUNT lines of FILE contain TEXT.
wait_for_text() { wait_until "${4:-$WAIT_SECONDS}" has_text "$1" "$2" "${3:-1}"; }

# ---- talkd ----

listening() { has_text "$TALK_TMP/log" "talkd: listening on " 1; }
listening_or_gone() { listening || ! running "$TALKD_PID"; }

# start_talkd ARGS...: runs "$TALKD" -p 0 -b 127.0.0.1 ARGS... in the background (on
# loopback only, nothing reachable from outside); waits for its
# "listening on" line and sets PORT and TALKD_PID. If it does not listen, says so
# on stderr and returns 1.
start_talkd() {
    local fifo=$TALK_TMP/operator fd
    rm -f "$TALK_TMP/console" "$TALK_TMP/log" "$fifo"
    mkfifo "$fifo"
    exec {fd}<>"$fifo"  # read-write: opening does not wait for a reader
    OPERATOR_FD=$fd
    HELD_FDS+=("$fd")
    : >"$TALK_TMP/console"
    : >"$TALK_TMP/log"
    (
        release_fds
        exec "$TALKD" -p 0 -b 127.0.0.1 "$@" <"$fifo" >"$TALK_TMP/console" 2>"$TALK_TMP/log"
    ) &
    TALKD_PID=$!
    TALKD_STATUS=
    wait_until 5 listening_or_gone || true
    if ! listening; then
        local why="it did not say so within 5 s"
        running "$TALKD_PID" || why="it exited"
        printf '%s: expected "talkd: listening on 127.0.0.1:PORT (BACKEND)" on stderr of %s -p 0 -b 127.0.0.1 %s; %s. Its stderr:\n' \
            "$PROG" "$TALKD" "$*" "$why" >&2
        show_tail "$TALK_TMP/log" >&2
        return 1
    fi
    PORT=$(sed -n 's/^talkd: listening on .*:\([0-9][0-9]*\) (.*)$/\1/p' "$TALK_TMP/log" | head -n 1)
    if ! [[ $PORT =~ ^[0-9]+$ ]]; then
        printf '%s: cannot read the port from: %s\n' "$PROG" "$(head -n 1 "$TALK_TMP/log")" >&2
        return 1
    fi
}

# operator_says LINE...: types lines on talkd's console (its stdin).
operator_says() { printf '%s\n' "$@" >&"$OPERATOR_FD"; }

# ---- clients ----

# open_client NAME [NC-OPTION...]: connects NAME to talkd. Its input is a FIFO held
# here; what it receives goes to $TALK_TMP/NAME.out, unless NAME_OUT names
# another file (a FIFO nobody reads, say).
open_client() {
    local name=$1 fifo=$TALK_TMP/$1.in fd out
    shift
    out=${NAME_OUT:-$TALK_TMP/$name.out}
    rm -f "$fifo" "$TALK_TMP/$name.out" "$TALK_TMP/$name.err" "$TALK_TMP/$name.typed"
    mkfifo "$fifo"
    exec {fd}<>"$fifo"
    HELD_FDS+=("$fd")
    CLIENT_FD[$name]=$fd
    [[ -p $out ]] || : >"$out"
    : >"$TALK_TMP/$name.typed"
    (
        release_fds
        exec timeout "$NC_SECONDS" nc.openbsd -N "$@" 127.0.0.1 "$PORT" <"$fifo" >"$out" 2>"$TALK_TMP/$name.err"
    ) &
    CLIENT_PID[$name]=$!
}

# run_nc: a client on this shell's stdin and stdout, for the right side of a
# pipeline: `generator | run_nc >file &`.
run_nc() {
    release_fds
    exec timeout "$NC_SECONDS" nc.openbsd -N 127.0.0.1 "$PORT"
}

# say NAME LINE...: NAME types the lines. Each is logged with how many lines NAME
# had received by then, for transcript.
say() {
    local name=$1 line n
    shift
    for line; do
        n=$(wc -l 2>/dev/null <"$TALK_TMP/$name.out") || n=0
        printf '%s\t%s\n' "$n" "$line" >>"$TALK_TMP/$name.typed"
        printf '%s\n' "$line" >&"${CLIENT_FD[$name]}"
    done
}

# hang_up NAME: ends NAME's input; nc half-closes and talkd closes the connection.
hang_up() {
    local fd=${CLIENT_FD[$1]:-}
    [[ -n $fd ]] || return 0
    forget_fd "$fd"
    CLIENT_FD[$1]=
}

# wait_client NAME [SECONDS]: waits (bounded) for NAME's nc to exit; its status,
# or 1 if it is still running.
wait_client() {
    local pid=${CLIENT_PID[$1]} st=0
    wait_until "${2:-$WAIT_SECONDS}" exited "$pid" || return 1
    wait "$pid" 2>/dev/null || st=$?
    return "$st"
}

# address_of NAME: NAME's address as talkd sees it, from its welcome line.
address_of() {
    sed -n 's/^\*\*\* Welcome to .* You are \([^ ]*\) in .*/\1/p' "$TALK_TMP/$1.out" | head -n 1
}

# transcript NAME: what NAME saw, indented, with what NAME typed ("> ") where it
# typed it.
transcript() {
    awk -v typed="$TALK_TMP/$1.typed" '
        function next_typed(l) {
            have = (getline l < typed) > 0
            if (have) {
                at = substr(l, 1, index(l, "\t") - 1) + 0
                text = substr(l, index(l, "\t") + 1)
            }
        }
        function typed_upto(n) {
            for (; have && at <= n; next_typed()) print "> " text
        }
        BEGIN { next_typed(); typed_upto(0) }
        { print "  " $0; typed_upto(NR) }
        END { typed_upto(1e18) }
    ' "$TALK_TMP/$1.out"
}
