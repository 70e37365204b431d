#!/bin/sh
# Prints imcd's version, in a form Debian accepts as a package version (it
# starts with a digit; '+' and '.' only): IMCD_VERSION when set; else from
# git: a tag v1.2.0 gives 1.2.0, 5 commits after it 1.2.0+git5.gabc1234,
# no tag at all 0.0.0+git20261207.abc1234 (the commit's date), with
# ".dirty" for uncommitted changes; else (no git, a tarball) 0.0.0+unknown.
# With -c it prints the commit instead (the full hash, "-dirty" added), or
# "unknown".
set -eu
cd "$(dirname "$0")/.."
dirty() { git diff --quiet HEAD -- 2>/dev/null || printf '%s' "$1"; }
if [ "${1:-}" = -c ]; then
	if c=$(git rev-parse HEAD 2>/dev/null); then echo "$c$(dirty -dirty)"; else echo unknown; fi
	exit 0
fi
if [ -n "${IMCD_VERSION:-}" ]; then
	echo "$IMCD_VERSION"
elif d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.0 or v1.2.0-5-gabc1234
	echo "$d" | sed -e 's/^v//' -e 's/-\([0-9]*\)-g\([0-9a-f]*\)$/+git\1.g\2/' -e 's/-/~/g' | tr -d '\n'
	dirty .dirty
	echo
elif d=$(git log -1 --format='%cd.%h' --date=format:'%Y%m%d' 2>/dev/null); then
	echo "0.0.0+git$d$(dirty .dirty)"
else
	echo 0.0.0+unknown
fi
