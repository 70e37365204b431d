#!/usr/bin/env bash
# Runs every imcd test on a fresh Debian machine: installs and starts what the
# tests need (Go toolchain, MariaDB, PostgreSQL), then runs the whole suite
# with the race detector; with a real OpenSIPS when one is at hand. The database tests fail rather than skip here.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(scripts/ensure-go.sh)
# The end-to-end tests build imcd with the same toolchain.
export PATH="$(dirname "$GO"):$PATH"
scripts/test-services.sh
export IMCD_TEST_MYSQL_URL=${IMCD_TEST_MYSQL_URL:-mysql://imcd:imcd@127.0.0.1:3306/imcd_test}
export IMCD_TEST_POSTGRES_URL=${IMCD_TEST_POSTGRES_URL:-postgres://imcd:imcd@127.0.0.1:5432/imcd_test}
export IMCD_TEST_REQUIRE_DB=1
# A real OpenSIPS for the tests that run through one, when this machine has a
# build of it (scripts/real-opensips.sh says where it looks); they skip without.
IMCD_TEST_OPENSIPS=$(scripts/real-opensips.sh)
export IMCD_TEST_OPENSIPS
[ -n "$IMCD_TEST_OPENSIPS" ] || echo "test.sh: no OpenSIPS build found: the tests through a real OpenSIPS will skip" >&2
"$GO" vet ./...
"$GO" test -race -count=1 -timeout 30m ./... "$@"
