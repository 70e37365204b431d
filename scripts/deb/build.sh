#!/usr/bin/env bash
# Builds the Debian package imcd_<version>_<arch>.deb into $1 (default
# var/deb) with Debian's own dpkg-deb (docs/dependencies.md says why not a
# Go packaging library), and prints its path. `make deb` runs it;
# internal/debtest installs what it builds.
#
# The version is scripts/version.sh's (from git; IMCD_VERSION overrides), and
# the binary has it stamped (scripts/build.sh). GO names the toolchain;
# GOARCH cross-builds (amd64, arm64, 386, arm). DEBFULLNAME and DEBEMAIL
# name the maintainer, as for dch. The build is reproducible: every file
# gets the commit's time (SOURCE_DATE_EPOCH overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mkdir -p "${1:-var/deb}" && cd "${1:-var/deb}" && pwd)
GO=${GO:-$(scripts/ensure-go.sh)}
export GO
version=$(scripts/version.sh)
commit=$(scripts/version.sh -c)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
maintainer="${DEBFULLNAME:-imcd developers} <${DEBEMAIL:-imcd-sip@users.noreply.github.com}>"
case ${GOARCH:-$("$GO" env GOARCH)} in
amd64) arch=amd64 ;;
arm64) arch=arm64 ;;
386) arch=i386 ;;
arm) arch=armhf ;;
*) echo "deb: no Debian architecture for GOARCH ${GOARCH:-}" >&2; exit 1 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/imcd
doc=$root/usr/share/doc/imcd
share=$root/usr/share/imcd
install -d "$root/DEBIAN" "$root/usr/sbin" "$root/etc/imcd" "$root/lib/systemd/system" \
	"$root/usr/lib/tmpfiles.d" "$root/usr/share/man/man8" "$doc/docs" \
	"$share/opensips" "$share/monitoring" "$root/usr/share/lintian/overrides"

# The program, its configuration (a conffile) and how it is run.
scripts/build.sh "$root/usr/sbin/imcd"
install -m 0644 scripts/imcd.conf "$root/etc/imcd/imcd.conf"
sed -e 's|/usr/local/bin/imcd|/usr/sbin/imcd|g' \
	-e 's|^# The Debian package (make deb) installs this unit.*|# Installed by the Debian package imcd.|' \
	-e '/^# By hand:/,/^#  *cp scripts\/systemd/d' \
	scripts/systemd/imcd.service >"$root/lib/systemd/system/imcd.service"
install -m 0644 scripts/deb/imcd.tmpfiles "$root/usr/lib/tmpfiles.d/imcd.conf"
gzip -9n <scripts/deb/imcd.8 >"$root/usr/share/man/man8/imcd.8.gz"
install -m 0644 scripts/deb/lintian-overrides "$root/usr/share/lintian/overrides/imcd"

# What an operator sets OpenSIPS, the database and monitoring up with.
cp -r sql "$share/sql"
find "$share/sql" -type f -exec chmod 0644 {} +
install -m 0644 scripts/opensips/*.cfg "$share/opensips/"
install -m 0755 scripts/rabbitmq-setup.sh "$share/rabbitmq-setup.sh"
install -m 0644 scripts/monitoring/* "$share/monitoring/"

# Documentation, where Debian wants it, with the copyright and changelog.
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/*.md "$doc/docs/"
scripts/deb/copyright.sh "$root/usr/sbin/imcd" >"$doc/copyright"
changed=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
{
	printf 'imcd (%s) unstable; urgency=medium\n\n' "$version"
	dirty=
	[ "${commit%-dirty}" = "$commit" ] || dirty=", with uncommitted changes"
	printf '  * Built from commit %s%s.\n' "${commit:0:12}" "$dirty"
	printf '    Changes: https://github.com/imcd-sip/imcd/commits/%s\n\n' "${commit:0:12}"
	printf ' -- %s  %s\n' "$maintainer" "$changed"
} | gzip -9n >"$doc/changelog.gz"

# Debian's control files.
install -m 0755 scripts/deb/postinst scripts/deb/prerm scripts/deb/postrm "$root/DEBIAN/"
echo /etc/imcd/imcd.conf >"$root/DEBIAN/conffiles"
size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: imcd
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: adduser
Suggests: opensips, opensips-cli
Section: net
Priority: optional
Homepage: https://github.com/imcd-sip/imcd
Description: IRC-style IM conference rooms for OpenSIPS, as a sidecar daemon
 imcd does the job of OpenSIPS's imc module from outside OpenSIPS: users send
 SIP MESSAGEs to a room (#create, #join, #invite, #list, or plain text for
 every member), OpenSIPS hands each one to imcd as an event, and imcd answers
 through OpenSIPS's t_uac_dlg. It keeps the rooms in the imc module's own
 tables (MySQL/MariaDB, PostgreSQL, or an embedded SQLite file), serves
 imc_list_rooms and imc_list_members to opensips-cli, and exports Prometheus
 metrics; a Grafana dashboard and alerting rules come with it.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/imcd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
