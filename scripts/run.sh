#!/usr/bin/env bash
# Builds imcd and runs it on its embedded default (an SQLite file under
# ./var, loopback sockets). Extra arguments go to imcd (see imcd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(scripts/ensure-go.sh)
"$GO" build -o bin/imcd ./cmd/imcd
exec bin/imcd "$@"
