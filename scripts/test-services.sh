#!/usr/bin/env bash
# Makes sure the services the tests use are installed, running and set up:
# MariaDB and PostgreSQL on loopback, each with a database imcd_test owned by
# user imcd (password imcd), and RabbitMQ (guest/guest on 127.0.0.1:5672) with
# the plugins pkg/rabbitmq's tests use; and the tools the packaging and
# monitoring tests run: lintian (internal/debtest) and promtool
# (internal/monitoringtest). Idempotent; safe to run on a machine that
# already has them. Needs root (or sudo) for the installs.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
updated= changed=
apt_install() {
	[ -n "$updated" ] || { as_root apt-get update -qq; updated=1; }
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
	changed=1
}

# --- MariaDB ---
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
	echo "test-services: installing MariaDB" >&2
	apt_install mariadb-server mariadb-client
fi
if ! mysqladmin --protocol=socket -uroot status >/dev/null 2>&1; then
	echo "test-services: starting MariaDB" >&2
	changed=1
	as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
	as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
	for _ in $(seq 60); do mysqladmin --protocol=socket -uroot status >/dev/null 2>&1 && break; sleep 0.5; done
fi
as_root mysql --protocol=socket -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS imcd_test;
CREATE USER IF NOT EXISTS 'imcd'@'localhost' IDENTIFIED BY 'imcd';
CREATE USER IF NOT EXISTS 'imcd'@'127.0.0.1' IDENTIFIED BY 'imcd';
GRANT ALL ON imcd_test.* TO 'imcd'@'localhost';
GRANT ALL ON imcd_test.* TO 'imcd'@'127.0.0.1';
-- store tests create throw-away databases imcd_t_* of their own
GRANT ALL ON `imcd\_t\_%`.* TO 'imcd'@'localhost';
GRANT ALL ON `imcd\_t\_%`.* TO 'imcd'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

# --- PostgreSQL ---
if ! command -v pg_ctlcluster >/dev/null; then
	echo "test-services: installing PostgreSQL" >&2
	apt_install postgresql
fi
pgver=$(ls /etc/postgresql | sort -V | tail -1)
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
	echo "test-services: starting PostgreSQL $pgver" >&2
	changed=1
	as_root pg_ctlcluster --skip-systemctl-redirect "$pgver" main start
	for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
pgsql() { as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"; }
pgsql -c "SELECT 1 FROM pg_roles WHERE rolname='imcd'" | grep -q 1 ||
	pgsql -c "CREATE ROLE imcd LOGIN PASSWORD 'imcd' CREATEDB"
pgsql -c "SELECT 1 FROM pg_database WHERE datname='imcd_test'" | grep -q 1 ||
	pgsql -c "CREATE DATABASE imcd_test OWNER imcd"

# --- RabbitMQ ---
# pkg/rabbitmq's tests: quorum queues, the consistent-hash exchange of the
# sharded topology, and the HTTP API that scripts/rabbitmq-setup.sh drives
# (management plugin).
if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
	echo "test-services: installing RabbitMQ" >&2
	apt_install rabbitmq-server
fi
if ! as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
	echo "test-services: starting RabbitMQ" >&2
	changed=1
	as_root rabbitmq-server -detached
	for _ in $(seq 120); do as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 0.5; done
	as_root rabbitmqctl -q await_startup >/dev/null
fi
plugins="rabbitmq_consistent_hash_exchange rabbitmq_management"
# shellcheck disable=SC2086 # two plugin names
if ! as_root rabbitmq-plugins -q is_enabled $plugins >/dev/null 2>&1; then
	echo "test-services: enabling $plugins" >&2
	changed=1
	as_root rabbitmq-plugins -q enable $plugins >/dev/null
fi
# --- the Debian package's and the alerting rules' checkers ---
# dpkg-deb, dpkg and start-stop-daemon come with every Debian. promtool
# comes with Debian's prometheus package, whose server is not wanted here:
# policy-rc.d keeps the package's scripts from starting it.
if ! command -v lintian >/dev/null; then
	echo "test-services: installing lintian" >&2
	apt_install lintian
fi
if ! command -v promtool >/dev/null; then
	echo "test-services: installing promtool (Debian package prometheus, not started)" >&2
	policy=/usr/sbin/policy-rc.d
	if [ -e "$policy" ]; then
		apt_install prometheus
	else
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
		apt_install prometheus || { as_root rm -f "$policy"; exit 1; }
		as_root rm -f "$policy"
	fi
fi

# Silent when there was nothing to do.
[ -z "$changed" ] || echo "test-services: MariaDB, PostgreSQL, RabbitMQ, lintian and promtool ready" >&2
