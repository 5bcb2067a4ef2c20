#!/usr/bin/env bash
# test/scripts/demo.sh: runs scripts/demo and checks its transcript: who saw what.
# test/run runs it with bash from the repo root; TALKD, if set, names the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(bash scripts/demo) || {
    printf '%s\n' "$out"
    echo "demo.sh: scripts/demo failed (see above)" >&2
    exit 1
}

# section NAME: the lines of the transcript under the header "-- NAME ...".
section() {
    awk -v name="$1" '
        /^-- / { inside = index($0, "-- " name " ") == 1 || index($0, "-- " name "\047") == 1; next }
        inside' <<<"$out"
}

failed=0
# expect NAME LINE: NAME's section has LINE (whole line).
expect() {
    if ! section "$1" | grep -qxF -- "$2"; then
        printf 'demo.sh: expected in the transcript of %s: "%s"; it has:\n' "$1" "$2" >&2
        section "$1" | sed 's/^/    | /' >&2
        failed=1
    fi
}
# expect_not NAME TEXT: no line in NAME's section contains TEXT.
expect_not() {
    if section "$1" | grep -qF -- "$2"; then
        printf 'demo.sh: expected nothing with "%s" in the transcript of %s; it has:\n' "$2" "$1" >&2
        section "$1" | grep -F -- "$2" | sed 's/^/    | /' >&2
        failed=1
    fi
}

expect alice "  ERR nick-in-use bob is already taken"
expect bob "  From alice, Hi everyone! Welcome to talkd."
expect carol "  From alice, Hi everyone! Welcome to talkd."
expect alice "  From bob, Hi alice. carol and I have a release to plan."
expect bob "  * carol waves"
expect alice "  *** bob moved to release"
expect bob "  *** carol joined release (2 here)"
expect carol "  From bob, Shall we tag 1.0 today?"
expect bob "  From carol, Yes, once the smoke test passes."
expect_not alice "Shall we tag"
expect alice "  *** rooms: release 2"
expect carol "  From alice (private), Good luck with the release!"
expect alice "  To carol (private), Good luck with the release!"
expect_not bob "(private)"
expect bob "  *** who: 3 connected"
expect bob "  *** carol left (quit: off to tag it)"
for who in alice bob carol; do
    expect "$who" "  *** goodbye"
    expect "$who" "> /quit$([[ $who == carol ]] && echo ' off to tag it')"
done
expect "talkd's console" "  From bob [release], Shall we tag 1.0 today?"
if [[ $(section "talkd's console" | grep -c '^  Disconnected : 127\.0\.0\.1 : [0-9]*$') -ne 3 ]]; then
    echo "demo.sh: expected 3 \"Disconnected : 127.0.0.1 : PORT\" lines on the console" >&2
    failed=1
fi

if [[ $failed -ne 0 ]]; then
    printf '%s\n' "$out"
    exit 1
fi
echo "demo.sh: the demo's transcript is as expected"
