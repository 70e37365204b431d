#!/usr/bin/env bash
# Prints the Debian copyright file of the package whose binary is $1: imcd's
# own notice, then, since the binary is statically linked, the Go standard
# library and every Go module compiled into it (as `go version -m` lists
# them), each with its license files as the module ships them. The Apache
# 2.0 and MPL 2.0 texts are referred to in /usr/share/common-licenses, as
# Debian asks. GO names the toolchain.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1
GO=${GO:-go}

cat <<'EOF_HEAD'
imcd: IRC-style IM conference rooms for OpenSIPS, as a sidecar daemon.
Source: https://github.com/imcd-sip/imcd

Copyright: the imcd authors.
License: see the repository (no license file is included at this version).

/usr/sbin/imcd is statically linked: it contains the Go standard library and
the Go modules listed below, each under its own license, reproduced here.
EOF_HEAD

# license FILE: the text, or a pointer to Debian's copy of a common license.
license() {
	if grep -q 'Apache License' "$1" && grep -q 'Version 2.0' "$1"; then
		echo 'Apache License, Version 2.0: see /usr/share/common-licenses/Apache-2.0.'
	elif grep -q 'Mozilla Public License Version 2.0' "$1"; then
		echo 'Mozilla Public License, Version 2.0: see /usr/share/common-licenses/MPL-2.0.'
	else
		cat "$1"
	fi
}

section() { # title dir
	printf '\n\n== %s ==\n' "$1"
	local f
	for f in $(cd "$2" && ls | grep -E '^(LICEN[CS]E|COPYING|NOTICE|PATENTS)' | grep -v LOGO); do
		printf '\n-- %s --\n' "$f"
		license "$2/$f" | sed -e 's/^[[:space:]]*$/./' -e 's/^/ /'
	done
}

section "Go standard library $("$GO" env GOVERSION)" "$("$GO" env GOROOT)"
"$GO" version -m "$bin" | awk '$1 == "dep" { print $2, $3 }' | while read -r path ver; do
	section "$path $ver" "$("$GO" list -m -f '{{.Dir}}' "$path")"
done
