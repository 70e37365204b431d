package config

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRabbitMQQueues(t *testing.T) {
	f := func(lines string, all, active, standby []string, reroute bool) {
		t.Helper()
		cfg, _, err := Load([]string{"-config", writeFile(t, lines)}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%q: %v", lines, err)
		}
		a, b, c := cfg.RabbitMQQueues()
		if !slices.Equal(a, all) || !slices.Equal(b, active) || !slices.Equal(c, standby) {
			t.Errorf("%q: queues %v, active %v, standby %v; want %v, %v, %v", lines, a, b, c, all, active, standby)
		}
		if got := cfg.RabbitMQReroute(); got != reroute {
			t.Errorf("%q: reroute %v, want %v", lines, got, reroute)
		}
	}
	f("event_source = rabbitmq\n", []string{"imcd.shard.0"}, []string{"imcd.shard.0"}, nil, false)
	f("rabbitmq_shards = 3\n", []string{"imcd.shard.0", "imcd.shard.1", "imcd.shard.2"},
		[]string{"imcd.shard.0", "imcd.shard.1", "imcd.shard.2"}, nil, true)
	f("rabbitmq_shards = 3\nrabbitmq_queues = 1\nrabbitmq_standby_queues = imcd.shard.2, 0\nrabbitmq_reroute = no\n",
		[]string{"imcd.shard.0", "imcd.shard.1", "imcd.shard.2"}, []string{"imcd.shard.1"}, []string{"imcd.shard.2", "imcd.shard.0"}, false)
	f("rabbitmq_queue_prefix = q\nrabbitmq_reroute = yes\n", []string{"q.0"}, []string{"q.0"}, nil, true)
}

func TestRabbitMQInvalid(t *testing.T) {
	f := func(lines, key, reason string) {
		t.Helper()
		_, _, err := Load([]string{"-config", writeFile(t, lines)}, &bytes.Buffer{})
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key || !strings.Contains(ke.Reason, reason) {
			t.Errorf("%q: got %v, want %s: …%s…", lines, err, key, reason)
		}
	}
	f("rabbitmq_queues = imcd.shard.1\n", "rabbitmq_queues", "not one of the 1 queues")
	f("rabbitmq_shards = 2\nrabbitmq_standby_queues = 2\n", "rabbitmq_standby_queues", `"imcd.shard.2" is not one`)
	f("rabbitmq_shards = 2\nrabbitmq_queues = 0,1\nrabbitmq_standby_queues = 1\n", "rabbitmq_standby_queues", "is in rabbitmq_queues too")
	f("rabbitmq_queues = 0,0\n", "rabbitmq_queues", "is in rabbitmq_queues too")
	f("events_table = imc_rooms\n", "events_table", "must differ")
	f("event_source = kafka\n", "event_source", "must be one of opensips, rabbitmq")
	f("rabbitmq_url = http://x/\n", "rabbitmq_url", "must be amqp://")
	f("rabbitmq_reroute = maybe\n", "rabbitmq_reroute", "must be one of auto, yes, no")
	f("events_window = 10s\n", "events_window", "at least 1m0s")
	f("rabbitmq_heartbeat = 500ms\n", "rabbitmq_heartbeat", "at least 1s")
}
