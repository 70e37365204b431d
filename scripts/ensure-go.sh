#!/usr/bin/env bash
# Prints the path of a Go toolchain new enough for go.mod, installing one if
# needed. Debian's golang package is older than imcd needs, and only the Go
# module proxy is reachable from a build machine, so the official toolchain is
# taken from there (golang.org/toolchain) and cached under ~/.cache/imcd.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
want=$(awk '/^go /{print $2}' "$top/go.mod")
version_ok() { # $1: a go binary
	local have
	have=$("$1" env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
	[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]
}
for g in "$(command -v go || true)" /usr/local/go/bin/go "$HOME/.cache/imcd/go/bin/go"; do
	if [ -n "$g" ] && [ -x "$g" ] && version_ok "$g"; then
		echo "$g"
		exit 0
	fi
done
ver=go1.26.8
dest="$HOME/.cache/imcd"
mkdir -p "$dest"
for tool in curl unzip; do
	command -v "$tool" >/dev/null || { apt-get update -qq >&2 && apt-get install -y -qq curl unzip >&2; }
done
zip="$dest/toolchain.zip"
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%,*}
echo "ensure-go: installing $ver from the Go module proxy into $dest/go" >&2
curl -fsSL "$proxy/golang.org/toolchain/@v/v0.0.1-$ver.linux-amd64.zip" -o "$zip"
rm -rf "$dest/unpack" "$dest/go"
unzip -q "$zip" -d "$dest/unpack"
mv "$dest/unpack/golang.org/toolchain@v0.0.1-$ver.linux-amd64" "$dest/go"
chmod +x "$dest/go/bin/"* "$dest/go/pkg/tool/"*/* 2>/dev/null || true
rm -rf "$dest/unpack" "$zip"
echo "$dest/go/bin/go"
