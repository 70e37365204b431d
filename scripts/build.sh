#!/bin/sh
# Builds imcd into $1 (default bin/imcd) with its version and commit stamped
# (scripts/version.sh), as `make build` and the Debian package do. GO names
# the toolchain (scripts/ensure-go.sh finds or installs one); GOFLAGS and
# the like are passed on. Static (no cgo) and position-independent.
set -eu
cd "$(dirname "$0")/.."
out=${1:-bin/imcd}
GO=${GO:-$(scripts/ensure-go.sh)}
v=$(scripts/version.sh)
c=$(scripts/version.sh -c)
CGO_ENABLED=0 "$GO" build -trimpath -buildmode=pie \
	-ldflags "-s -w -X main.version=$v -X main.commit=$c" -o "$out" ./cmd/imcd
