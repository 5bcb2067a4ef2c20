#!/usr/bin/env bash
# test/scripts/slow-reader.sh: scripts/slow-reader, which passes when talkd drops
# the client that stopped reading and no one else, and the others keep every line.
# test/run runs it with bash from the repo root; TALKD, if set, names the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash scripts/slow-reader
