#!/usr/bin/env bash
# test/scripts/profile.sh: scripts/profile counts the work of a small fan-out on
# epoll: whole deliveries, and a positive count from each tool that is here.
# test/run runs it with bash from the repo root; TALKD and TALKBENCH, if set, name
# the binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -n ${SANITIZE:-} ]]; then
    echo "profile.sh: skipped in a sanitizer build (valgrind cannot run it)"
    exit 0
fi
have_perf=
if command -v perf >/dev/null && perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    have_perf=1
fi
have_valgrind=
command -v valgrind >/dev/null && have_valgrind=1
if [[ -z $have_perf && -z $have_valgrind ]]; then
    echo "profile.sh: skipped: neither perf nor valgrind is installed"
    exit 0
fi

out=$(bash scripts/profile --models=epoll --point=1x50 --deliveries=5000 --csv) || {
    printf '%s\n' "$out"
    echo "profile.sh: scripts/profile failed" >&2
    exit 1
}
failed=0
fail() {
    echo "profile.sh: $*" >&2
    failed=1
}
header=$(head -n 1 <<<"$out")
[[ $header == model,point,load,deliveries,* ]] || fail "unexpected CSV header: $header"
row=$(grep '^epoll,' <<<"$out" || true)
[[ -n $row ]] || fail "no row for epoll"
IFS=, read -r _ point load deliveries _ sys _ ins _ <<<"$row"
[[ $point == 1x50 && $load == saturated ]] || fail "point '$point', load '$load'; expected 1x50, saturated"
[[ $deliveries == 5000 ]] || fail "$deliveries deliveries; expected 5000 (50 messages to 50 receivers)"
positive() { awk -v v="$1" 'BEGIN { exit !(v ~ /^[0-9.]+$/ && v > 0) }'; }
if [[ -n $have_perf ]]; then
    positive "$sys" || fail "system calls per delivery: '$sys'"
fi
if [[ -n $have_valgrind ]]; then
    positive "$ins" || fail "instructions per delivery: '$ins'"
fi
if ((failed)); then
    printf '%s\n' "$out"
    exit 1
fi
echo "profile.sh: $deliveries deliveries; per delivery $sys system calls, $ins user-space instructions"
