#!/usr/bin/env bash
# Prints the path of a real OpenSIPS binary for the tests and benchmarks that
# run through one (internal/opensipsproc), or nothing when there is none: those
# tests then skip and say why. OpenSIPS is not in Debian; a build of it comes as
# a tarball (opensips-*-debian12-amd64.tar.xz, unpacking to opensips/sbin and
# opensips/lib64). Looked for, in order: $IMCD_TEST_OPENSIPS (a binary),
# $IMCD_OPENSIPS_TARBALL, then opensips/opensips-*.tar.xz in ../shared beside
# this checkout and in /work/shared. A tarball is unpacked once into var/opensips,
# and the shared libraries its modules need are installed from Debian.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
runs() { "$1" -a F_MALLOC -V >/dev/null 2>&1; }

if [ -n "${IMCD_TEST_OPENSIPS:-}" ]; then
	runs "$IMCD_TEST_OPENSIPS" || { echo "real-opensips: $IMCD_TEST_OPENSIPS does not run" >&2; exit 1; }
	echo "$IMCD_TEST_OPENSIPS"
	exit 0
fi
tarball=${IMCD_OPENSIPS_TARBALL:-}
if [ -z "$tarball" ]; then
	for d in "$top/../shared/opensips" /work/shared/opensips; do
		for f in "$d"/opensips-*.tar.xz; do
			[ -f "$f" ] && { tarball=$f; break 2; }
		done
	done
fi
[ -n "$tarball" ] || exit 0
dest="$top/var/opensips"
bin="$dest/opensips/sbin/opensips"
stamp="$dest/.from"
if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$tarball" ]; then
	rm -rf "$dest" && mkdir -p "$dest"
	tar -C "$dest" -xJf "$tarball"
	echo "$tarball" >"$stamp"
fi
# The modules the tests load link against these (db_mysql, event_rabbitmq, json, httpd).
libs="libmariadb3 libjson-c5 libmicrohttpd12 librabbitmq4"
# shellcheck disable=SC2086 # a list of package names
if ! dpkg -s $libs >/dev/null 2>&1; then
	echo "real-opensips: installing $libs" >&2
	as_root apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $libs >/dev/null
fi
runs "$bin" || { echo "real-opensips: $bin does not run" >&2; exit 1; }
echo "$bin"
