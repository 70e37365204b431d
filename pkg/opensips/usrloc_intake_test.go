package opensips_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// usrlocLog records the usrloc events an event server hands over.
type usrlocLog struct {
	mu  sync.Mutex
	got []string // "NAME uri"
}

func (l *usrlocLog) Usrloc(ev *opensips.UsrlocEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, ev.Name+" "+ev.URI("")+" "+ev.Contact)
}

func (l *usrlocLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// subscribe subscribes socket to events at the fake, as the daemon's
// Subscribers do.
func subscribe(t *testing.T, fake *opensipstest.Server, socket string, events ...string) {
	t.Helper()
	c := openClient(t, fake.MISocket(), nil)
	for _, ev := range events {
		_, err := c.Call(context.Background(), "event_subscribe", []byte(`{"event":"`+ev+`","socket":"`+socket+`","expire":600}`))
		mustf(t, err, "subscribe %s", ev)
	}
}

// TestUsrlocIntake: with a UsrlocSink, the usrloc events the fake raises
// for a registration come through the same socket as E_IMC_MESSAGE, are
// answered in reliable mode and counted apart; E_IMC_MESSAGE still goes to
// the Sink.
func TestUsrlocIntake(t *testing.T) {
	for _, transport := range []string{"stream", "datagram"} {
		t.Run(transport, func(t *testing.T) {
			fake := startFake(t, opensipstest.Options{Reliable: true})
			sink := newSink(true)
			var ul usrlocLog
			var socket string
			var obs *countingObserver
			if transport == "stream" {
				s, o := startStream(t, sink, func(s *opensips.EventStreamServer) { s.Usrloc = &ul })
				socket, obs = "tcp:"+s.LocalAddr().String(), o
			} else {
				obs = newObserver()
				s := &opensips.EventDatagramServer{Addr: "127.0.0.1:0", Sink: sink, Usrloc: &ul, Observer: obs, Logger: testLogger(t)}
				mustf(t, s.Open(context.Background()), "open")
				t.Cleanup(func() { s.Close() })
				socket = "udp:" + s.LocalAddr().String()
			}
			subscribe(t, fake, socket, append(opensips.ReachabilityEventNames(), opensips.DefaultEventName)...)
			// In reliable mode Register fails unless every event was answered OK.
			mustf(t, fake.Register("bob@example.com", "sip:bob@192.0.2.1:5062", time.Hour), "register")
			mustf(t, fake.Register("bob@example.com", "sip:bob@192.0.2.1:5062", time.Hour), "refresh")
			mustf(t, fake.Unregister("bob@example.com", ""), "unregister") // not subscribed: nothing comes
			_, err := fake.Raise(opensipstest.NewEvent("sip:alice@example.com", "sip:chat-1@example.com", "hello"))
			mustf(t, err, "raise")
			sink.wait(t, 1)
			waitFor(t, "3 usrloc events", func() bool { return len(ul.snapshot()) == 3 })
			want := []string{
				"E_UL_AOR_INSERT sip:bob@example.com ",
				"E_UL_CONTACT_INSERT sip:bob@example.com sip:bob@192.0.2.1:5062",
				"E_UL_CONTACT_UPDATE sip:bob@example.com sip:bob@192.0.2.1:5062",
			}
			if got := ul.snapshot(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("usrloc events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			waitFor(t, "counts", func() bool {
				return obs.event(transport+"/usrloc") == 3 && obs.event(transport+"/ok") == 1
			})
		})
	}
}

// TestUsrlocRefusedWithoutSink: without a UsrlocSink a usrloc event is a
// wrong event, refused in reliable mode; a malformed one with a sink is a
// decode error.
func TestUsrlocRefusedWithoutSink(t *testing.T) {
	sink := newSink(true)
	s, obs := startStream(t, sink, nil)
	c := dial(t, s.LocalAddr())
	_, err := c.Write([]byte(`{"id":5,"jsonrpc":"2.0","method":"E_UL_AOR_INSERT","params":{"domain":"location","aor":"bob@example.com"}}`))
	mustf(t, err, "write")
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"opensips: unexpected event name: \"E_UL_AOR_INSERT\""},"id":5}`)
	if obs.event("stream/wrong_event") != 1 {
		t.Fatalf("counts %v", obs)
	}

	var ul usrlocLog
	s2, obs2 := startStream(t, sink, func(s *opensips.EventStreamServer) { s.Usrloc = &ul })
	c2 := dial(t, s2.LocalAddr())
	_, err = c2.Write([]byte(`{"id":6,"jsonrpc":"2.0","method":"E_UL_CONTACT_INSERT","params":{"domain":"location","aor":"bob@example.com"}}`))
	mustf(t, err, "write")
	c2.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 512)
	n, err := c2.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), `"error"`) || !strings.Contains(string(buf[:n]), `\"uri\"`) {
		t.Fatalf("reply %q %v", buf[:n], err)
	}
	if obs2.event("stream/decode_error") != 1 || len(ul.snapshot()) != 0 {
		t.Fatalf("counts %v, events %v", obs2, ul.snapshot())
	}
}
