package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// captured is one message the real OpenSIPS published
// (testdata/opensips-wire/rabbitmq): its body byte for byte, its content
// type and AMQP headers.
type captured struct {
	name, ctype string
	headers     amqp.Table
	body        []byte
	ev          opensips.Event
}

func loadCaptures(t *testing.T) map[string]captured {
	t.Helper()
	metas, err := filepath.Glob("../../testdata/opensips-wire/rabbitmq/*.meta.json")
	if err != nil || len(metas) == 0 {
		t.Fatalf("captures: %v", err)
	}
	var p fastjson.Parser
	out := map[string]captured{}
	for _, name := range metas {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Properties struct {
				ContentType string            `json:"content_type"`
				Headers     map[string]string `json:"headers"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		c := captured{name: filepath.Base(name)[:2], ctype: meta.Properties.ContentType}
		if meta.Properties.Headers != nil {
			c.headers = amqp.Table{}
			for k, v := range meta.Properties.Headers {
				c.headers[k] = v
			}
		}
		if c.body, err = os.ReadFile(strings.TrimSuffix(name, ".meta.json") + ".body"); err != nil {
			t.Fatal(err)
		}
		if err := rabbitmq.Decode(&p, c.headers, c.body, &c.ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[c.name] = c
	}
	return out
}

// TestRabbitMQBacklogAtStart: messages published while no imcd runs (the
// captured OpenSIPS's own bytes, both forms, and more in the same JSON
// form) stay in the queue and are applied in order when imcd starts; every
// notice the model expects is sent, byte for byte, and the queue is empty
// afterwards.
func TestRabbitMQBacklogAtStart(t *testing.T) {
	r := feed.New(t, testbroker.URL(t), 1, true)
	caps := loadCaptures(t)
	// The captures' hdr-* rooms are outside the default room_prefix.
	m := newModel(func(c *config.Config) { c.RoomPrefix = "" })
	publish := func(ev opensips.Event, c *captured) {
		t.Helper()
		m.apply(ev)
		var err error
		if c == nil {
			err = r.Publish(ev)
		} else {
			err = r.PublishRaw(ev.Req.RURI, amqp.Publishing{ContentType: c.ctype, Headers: c.headers, Body: c.body})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	const bob, r1, h1 = "sip:bob@127.0.0.1", "sip:chat-r1@127.0.0.1", "sip:hdr-r1@127.0.0.1"
	const alice = "sip:alice@127.0.0.1"
	for _, step := range []string{"06", "join " + r1, "01", "02", "03", "04", "07", "create " + h1, "join " + h1, "08", "09", "10", "05"} {
		switch cmd, room, _ := strings.Cut(step, " "); cmd {
		case "join":
			publish(feed.Event(opensipstest.NewEvent(bob, room, "#join")), nil)
		case "create":
			publish(feed.Event(opensipstest.NewEvent(alice, room, "#create "+strings.TrimSuffix(strings.TrimPrefix(room, "sip:"), "@127.0.0.1"))), nil)
		default:
			c := caps[step]
			publish(c.ev, &c)
		}
	}
	if m.total < 12 {
		t.Fatalf("the model expects only %d notices", m.total)
	}
	if n := r.Ready(); n != 13 {
		t.Fatalf("%d messages queued, want 13", n)
	}

	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	startIMCD(t, f, procOpts{dir: dir, extra: rabbitLines(r, `room_prefix = ""`)})
	if !waitFor(20*time.Second, func() bool { return len(f.Deliveries()) >= m.total }) {
		t.Fatalf("%d of %d notices after 20s", len(f.Deliveries()), m.total)
	}
	time.Sleep(100 * time.Millisecond) // anything extra would show up now
	ds := f.Deliveries()
	if missing, _ := m.checkNotices(t, ds); missing != 0 || len(ds) != m.total {
		t.Errorf("%d notices, want %d (%d missing)", len(ds), m.total, missing)
	}
	// The bodies went through byte for byte: Latin-1, control bytes, CRLF.
	for _, name := range []string{"01", "02", "03", "08", "09", "10"} {
		found := false
		for _, d := range ds {
			found = found || d.To == bob && strings.HasSuffix(d.Body, ">: "+caps[name].ev.Req.Body)
		}
		if !found {
			t.Errorf("capture %s: bob never got %q", name, caps[name].ev.Req.Body)
		}
	}
	if !waitFor(10*time.Second, func() bool { return r.Ready() == 0 }) {
		t.Errorf("%d messages still queued", r.Ready())
	}
	if err := m.checkTables("sqlite://"+filepath.Join(dir, "imcd.db"), testdb.Tables{Rooms: "imc_rooms", Members: "imc_members"}); err != nil {
		t.Error(err)
	}
}
