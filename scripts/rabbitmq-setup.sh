#!/usr/bin/env bash
# Sets up RabbitMQ for imcd's rabbitmq event source (docs/scale-out.md):
#   * a durable exchange that OpenSIPS's rabbitmq_publish sends every room
#     MESSAGE to, routing key = the R-URI;
#   * N durable quorum queues with single-active-consumer (x-queue-type
#     quorum, x-single-active-consumer true), PREFIX.0 … PREFIX.N-1;
#   * with N = 1 the exchange is a fanout (every R-URI to the one queue: total
#     order). With N > 1 it is an x-consistent-hash exchange (plugin
#     rabbitmq_consistent_hash_exchange) and each queue is bound with weight
#     "1": a room always hashes to one queue while the bindings stay the same;
#   * optionally a dead-letter fanout exchange and quorum queue of the same
#     name, set as every queue's x-dead-letter-exchange, which keep the
#     messages imcd rejects as undecodable.
# It does what imcd does at start with rabbitmq_declare = yes, so either may
# be used; both are idempotent. Declaring a queue that exists with other
# arguments fails: RabbitMQ never changes a queue's arguments (delete it, or
# use a policy).
#
# It uses rabbitmqadmin, i.e. RabbitMQ's HTTP API (port 15672), because that
# is the broker's own tool that declares exchanges, queues and bindings with
# their arguments, from any machine, idempotently; rabbitmqctl cannot declare
# any of them. The HTTP API is served by the management plugin, which is not
# enabled by default: --enable-plugins enables it (and the consistent-hash
# plugin when N > 1) with rabbitmq-plugins, on the broker's own machine.
#
# Usage: scripts/rabbitmq-setup.sh [options]
#   --shards N            queues (default 4; 1 = single queue, fanout)
#   --exchange NAME       default imcd.rooms (OpenSIPS's server_id exchange)
#   --queue-prefix NAME   default imcd.shard
#   --dead-letter NAME    dead-letter exchange and queue (default: none)
#   --delivery-limit N    x-delivery-limit (default: none; see docs/scale-out.md)
#   --enable-plugins      enable the plugins needed first (local broker, root)
#   --host H --port P --vhost V --user U --password W
#                         the HTTP API (default localhost 15672 / guest guest)
set -euo pipefail

shards=4 exchange=imcd.rooms prefix=imcd.shard dlx= limit= plugins=
host=localhost port=15672 vhost=/ user=guest password=guest
while [ $# -gt 0 ]; do
	case $1 in
	--shards) shards=$2; shift ;;
	--exchange) exchange=$2; shift ;;
	--queue-prefix) prefix=$2; shift ;;
	--dead-letter) dlx=$2; shift ;;
	--delivery-limit) limit=$2; shift ;;
	--enable-plugins) plugins=1 ;;
	--host) host=$2; shift ;;
	--port) port=$2; shift ;;
	--vhost) vhost=$2; shift ;;
	--user) user=$2; shift ;;
	--password) password=$2; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "rabbitmq-setup: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $shards in '' | *[!0-9]* | 0) echo "rabbitmq-setup: --shards must be a positive number" >&2; exit 2 ;; esac
case $limit in *[!0-9]*) echo "rabbitmq-setup: --delivery-limit must be a number" >&2; exit 2 ;; esac

if [ -n "$plugins" ]; then
	want=rabbitmq_management
	[ "$shards" -gt 1 ] && want="$want rabbitmq_consistent_hash_exchange"
	# shellcheck disable=SC2086 # two plugin names
	rabbitmq-plugins enable --quiet $want >/dev/null
	for _ in $(seq 60); do
		rabbitmqadmin -H "$host" -P "$port" -u "$user" -p "$password" -q list vhosts name >/dev/null 2>&1 && break
		sleep 0.5
	done
fi

admin() {
	rabbitmqadmin -H "$host" -P "$port" -V "$vhost" -u "$user" -p "$password" -q "$@" >/dev/null
}

args='"x-queue-type":"quorum","x-single-active-consumer":true'
if [ -n "$dlx" ]; then
	admin declare exchange name="$dlx" type=fanout durable=true
	admin declare queue name="$dlx" durable=true arguments='{"x-queue-type":"quorum"}'
	admin declare binding source="$dlx" destination="$dlx" destination_type=queue routing_key=
	args="$args,\"x-dead-letter-exchange\":\"$dlx\""
fi
[ -n "$limit" ] && args="$args,\"x-delivery-limit\":$limit"

if [ "$shards" -eq 1 ]; then
	type=fanout key=
else
	type=x-consistent-hash key=1 # the binding key is the queue's weight on the hash ring
fi
admin declare exchange name="$exchange" type="$type" durable=true
for i in $(seq 0 $((shards - 1))); do
	admin declare queue name="$prefix.$i" durable=true arguments="{$args}"
	admin declare binding source="$exchange" destination="$prefix.$i" destination_type=queue routing_key="$key"
done
echo "rabbitmq-setup: exchange $exchange ($type) -> $shards quorum queue(s) $prefix.0..$((shards - 1))${dlx:+, dead letters to $dlx}" >&2
