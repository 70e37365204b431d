package opensips_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

func startStream(t *testing.T, sink opensips.Sink, mutate func(*opensips.EventStreamServer)) (*opensips.EventStreamServer, *countingObserver) {
	t.Helper()
	obs := newObserver()
	s := &opensips.EventStreamServer{Addr: "127.0.0.1:0", Sink: sink, Observer: obs, Logger: testLogger(t)}
	if mutate != nil {
		mutate(s)
	}
	mustf(t, s.Open(context.Background()), "open")
	t.Cleanup(func() { s.Close() })
	return s, obs
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	mustf(t, err, "dial")
	t.Cleanup(func() { c.Close() })
	return c
}

// writeChunks writes b in random small pieces, so that objects are cut
// anywhere.
func writeChunks(t *testing.T, c net.Conn, b []byte, seed uint64) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 1))
	for len(b) > 0 {
		n := min(1+rnd.IntN(400), len(b))
		_, err := c.Write(b[:n])
		mustf(t, err, "write")
		b = b[n:]
	}
}

// expectSilence checks that nothing comes back on c for a while.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 256)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("expected nothing, read %q (%v)", buf[:n], err)
	}
}

// expectClosed waits until the server closed c (EOF or reset).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open")
	}
}

// expectReply reads exactly want from c.
func expectReply(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading reply %s: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		t.Fatalf("reply\n got %s\nwant %s", got, want)
	}
}

func callIDs(t *testing.T, stream []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(stream))
	var ids []string
	for {
		var m struct {
			Params struct {
				CallID string `json:"callid"`
			} `json:"params"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return ids
		} else if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Params.CallID)
	}
}

// TestStreamNotificationCapture replays the captured notification-mode
// stream over a real TCP connection: 13 events, in order, nothing sent back.
func TestStreamNotificationCapture(t *testing.T) {
	stream := readWire(t, "events/stream/notification-mode-13-events.stream.txt")
	want := callIDs(t, stream)
	for seed := range uint64(3) {
		sink := newSink(true)
		s, obs := startStream(t, sink, nil)
		c := dial(t, s.LocalAddr())
		writeChunks(t, c, stream, seed)
		evs := sink.wait(t, 13)
		for i, ev := range evs {
			if ev.Req.CallID != want[i] || ev.Transport != opensips.TransportStream {
				t.Fatalf("event %d: callid %q transport %q, want %q", i, ev.Req.CallID, ev.Transport, want[i])
			}
		}
		if evs[1].Req.Body != "line1\r\nline2 \"quoted\" back\\slash\ttab /slash \x01ctl \x7fdel end" {
			t.Fatalf("escapes: %q", evs[1].Req.Body)
		}
		if evs[2].Req.Body != "héllo wörld ✓ 日本語 🎉" {
			t.Fatalf("utf-8: %q", evs[2].Req.Body)
		}
		waitFor(t, "13 counted ok", func() bool { return obs.event("stream/ok") == 13 })
		expectSilence(t, c, 100*time.Millisecond)
	}
}

// TestStreamReliable checks reliable mode at the protocol level: a reply only
// once done is called, with exactly the bytes OpenSIPS expects.
func TestStreamReliable(t *testing.T) {
	sink := newSink(false)
	s, obs := startStream(t, sink, nil)
	c := dial(t, s.LocalAddr())
	writeChunks(t, c, readWire(t, "events/stream/reliable-mode-3-requests.stream.txt"), 9)
	evs := sink.wait(t, 3)
	if evs[0].Req.Body != "reliable 1" || evs[2].Req.Body != "reliable 3" || evs[1].SrcPort != 47596 {
		t.Fatalf("events %+v", evs)
	}
	expectSilence(t, c, 150*time.Millisecond) // nothing before done

	_, dones := sink.snapshot()
	dones[1](errors.New("database unavailable"))
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"database unavailable"},"id":40042605}`)
	dones[0](nil)
	expectReply(t, c, `{"jsonrpc":"2.0","result":"OK","id":1325833874}`)
	dones[2](nil)
	dones[2](nil) // a second call is ignored
	dones[0](errors.New("late"))
	expectReply(t, c, `{"jsonrpc":"2.0","result":"OK","id":1087971656}`)
	expectSilence(t, c, 100*time.Millisecond)
	waitFor(t, "3 counted ok", func() bool { return obs.event("stream/ok") == 3 })

	// done from another goroutine, after the connection is gone: no panic.
	c.Close()
	writeChunks(t, dial(t, s.LocalAddr()), readWire(t, "events/stream/reliable-mode-no-replies.stream.txt"), 1)
	sink.wait(t, 6)
	_, dones = sink.snapshot()
	for _, d := range dones[3:] {
		go d(nil)
	}
}

// TestStreamRefusals covers busy, wrong event, bad params and oversized
// frames, in both modes.
func TestStreamRefusals(t *testing.T) {
	sink := newSink(true)
	s, obs := startStream(t, sink, func(s *opensips.EventStreamServer) { s.MaxFrame = 1000 })
	c := dial(t, s.LocalAddr())

	const params = `"params":{"from":"sip:alice@127.0.0.1","ruri":"sip:chat-1@127.0.0.1","callid":"cid-1@lab","body":"x"}`
	// Wrong event: ignored as a notification, refused as a request.
	io.WriteString(c, `{"jsonrpc":"2.0","method":"E_OTHER",`+params+`}`)
	io.WriteString(c, `{"id":5,"jsonrpc":"2.0","method":"E_OTHER",`+params+`}`)
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"opensips: unexpected event name: \"E_OTHER\""},"id":5}`)
	// Missing from.
	io.WriteString(c, `{"id":6,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"ruri":"sip:chat-1@127.0.0.1","callid":"cid-2@lab","body":"x"}}`)
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"opensips: bad event param \"from\": missing or empty"},"id":6}`)
	// Not JSON inside an object: a decode error, and the connection goes on.
	io.WriteString(c, `{"id":7,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":tru}}`)
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"opensips: bad event: -32700 Parse error"},"id":7}`)
	// Busy.
	sink.set(errors.New("shard queue full"), "")
	io.WriteString(c, `{"id":8,"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`)
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"shard queue full"},"id":8}`)
	io.WriteString(c, `{"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`)
	waitFor(t, "busy count", func() bool { return obs.event("stream/busy") == 2 })
	// A panic in the sink is recovered and the connection goes on.
	sink.set(nil, "boom")
	io.WriteString(c, `{"id":9,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"boom"}}`)
	expectReply(t, c, `{"jsonrpc":"2.0","error":{"code":-32000,"message":"opensips: internal error while handling the event"},"id":9}`)
	io.WriteString(c, `{"id":10,"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`)
	expectReply(t, c, `{"jsonrpc":"2.0","result":"OK","id":10}`)
	waitFor(t, "refusals counted", func() bool {
		return obs.event("stream/panic") == 1 && obs.event("stream/wrong_event") == 2 && obs.event("stream/decode_error") == 2
	})
	// Over MaxFrame: counted, connection closed (no resync is possible).
	io.WriteString(c, `{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"body":"`+strings.Repeat("x", 2000)+`"}}`)
	expectClosed(t, c)
	waitFor(t, "too_big count", func() bool { return obs.event("stream/too_big") == 1 })
	// Garbage between objects closes the connection too.
	c2 := dial(t, s.LocalAddr())
	io.WriteString(c2, "{}\nHTTP/1.1 GET /\r\n")
	expectClosed(t, c2)
	// The server still serves new connections.
	c3 := dial(t, s.LocalAddr())
	io.WriteString(c3, `{"id":11,"jsonrpc":"2.0","method":"E_IMC_MESSAGE",`+params+`}`)
	expectReply(t, c3, `{"jsonrpc":"2.0","result":"OK","id":11}`)
}

// TestStreamConnections checks several connections at once, the source
// filter and Close.
func TestStreamConnections(t *testing.T) {
	sink := newSink(true)
	s, obs := startStream(t, sink, nil)
	stream := readWire(t, "events/stream/notification-mode-13-events.stream.txt")
	conns := []net.Conn{dial(t, s.LocalAddr()), dial(t, s.LocalAddr()), dial(t, s.LocalAddr())}
	for i, c := range conns {
		go func() { writeChunks(t, c, stream, uint64(i)) }()
	}
	sink.wait(t, 39)
	waitFor(t, "39 counted ok", func() bool { return obs.event("stream/ok") == 39 })
	mustf(t, s.Close(), "close")
	mustf(t, s.Close(), "second close")
	for _, c := range conns {
		expectClosed(t, c)
	}

	refused, obs2 := startStream(t, sink, func(s *opensips.EventStreamServer) {
		s.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	c := dial(t, refused.LocalAddr())
	c.Write(stream[:100])
	expectClosed(t, c)
	waitFor(t, "refused_source counted", func() bool { return obs2.event("stream/refused_source") == 1 })
	allowed, _ := startStream(t, newSink(true), func(s *opensips.EventStreamServer) {
		s.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	c = dial(t, allowed.LocalAddr())
	io.WriteString(c, `{"id":1,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":""}}`)
	expectReply(t, c, `{"jsonrpc":"2.0","result":"OK","id":1}`)
}

// TestStreamListenThenServe opens the socket apart from serving it, as a
// caller does that needs the bound port before events may flow, and checks
// that Serve returns nil once Close is called.
func TestStreamListenThenServe(t *testing.T) {
	sink := newSink(true)
	s := &opensips.EventStreamServer{Addr: "127.0.0.1:0", Sink: sink, EventName: "E_CUSTOM"}
	mustf(t, s.Listen(context.Background()), "listen")
	if s.LocalAddr() == nil || s.LocalAddr().(*net.TCPAddr).Port == 0 {
		t.Fatalf("LocalAddr after Listen: %v", s.LocalAddr())
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	c := dial(t, s.LocalAddr())
	io.WriteString(c, `{"jsonrpc":"2.0","method":"E_CUSTOM","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"hi"}}`)
	sink.wait(t, 1)
	s.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after Close", err)
	}
}

// TestStreamFromFake runs the whole subscription and delivery path against
// the fake OpenSIPS, in both event_stream modes.
func TestStreamFromFake(t *testing.T) {
	for _, reliable := range []bool{false, true} {
		sink := newSink(true)
		s, _ := startStream(t, sink, nil)
		fake := startFake(t, opensipstest.Options{Reliable: reliable})
		mi := openClient(t, fake.MISocket(), nil)
		socket := "tcp:" + s.LocalAddr().String()
		sub := &opensips.Subscriber{Client: mi, Socket: socket, Logger: testLogger(t)}
		mustf(t, sub.Open(context.Background()), "subscriber")
		mustf(t, fake.WaitSubscribed(ctxTimeout(t, 5*time.Second), "E_IMC_MESSAGE", socket), "subscribed")
		for i := range 5 {
			ev := opensipstest.NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "hello "+string(rune('a'+i)))
			replies, err := fake.Raise(ev)
			mustf(t, err, "raise")
			if reliable {
				want := `{"jsonrpc":"2.0","result":"OK","id":` + itoa(replies[0].ID) + `}`
				if len(replies) != 1 || string(replies[0].Raw) != want {
					t.Fatalf("replies %+v, want %s", replies, want)
				}
			}
		}
		evs := sink.wait(t, 5)
		if evs[4].Req.Body != "hello e" || evs[0].Req.From != "sip:alice@127.0.0.1" || evs[0].SrcPort != 5071 {
			t.Fatalf("events %+v", evs)
		}
		mustf(t, sub.Close(), "unsubscribe")
		if n := len(fake.Subscriptions("E_IMC_MESSAGE")); n != 0 {
			t.Fatalf("%d subscriptions left after Close", n)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
