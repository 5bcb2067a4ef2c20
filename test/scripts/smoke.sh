#!/usr/bin/env bash
# test/scripts/smoke.sh: scripts/smoke over every backend talkd was built with.
# test/run runs it with bash from the repo root; TALKD, if set, names the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash scripts/smoke
