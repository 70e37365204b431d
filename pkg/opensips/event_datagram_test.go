package opensips_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

func startDatagram(t *testing.T, network, addr string, sink opensips.Sink, mutate func(*opensips.EventDatagramServer)) (*opensips.EventDatagramServer, *countingObserver) {
	t.Helper()
	obs := newObserver()
	s := &opensips.EventDatagramServer{Network: network, Addr: addr, Sink: sink, Observer: obs, Logger: testLogger(t), ReadBuffer: 4 << 20}
	if mutate != nil {
		mutate(s)
	}
	mustf(t, s.Open(context.Background()), "open")
	t.Cleanup(func() { s.Close() })
	return s, obs
}

// capturedDatagrams returns the captured event datagrams, by file name.
func capturedDatagrams(t *testing.T) (names []string, data [][]byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(wire, "events/datagram/*.json"))
	if err != nil || len(files) != 17 {
		t.Fatalf("%d captures, %v", len(files), err)
	}
	for _, f := range files {
		names = append(names, filepath.Base(f))
		data = append(data, readWire(t, "events/datagram/"+filepath.Base(f)))
	}
	return names, data
}

// TestDatagramCaptures sends every captured datagram, the 65,507-byte one
// included, over real UDP and unix datagram sockets.
func TestDatagramCaptures(t *testing.T) {
	names, data := capturedDatagrams(t)
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unixgram" {
				addr = filepath.Join(t.TempDir(), "events.sock")
			}
			sink := newSink(true)
			s, obs := startDatagram(t, network, addr, sink, nil)
			c, err := net.Dial(network, s.LocalAddr().String())
			mustf(t, err, "dial")
			defer c.Close()
			if uc, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
				uc.SetWriteBuffer(1 << 20)
			}
			for i, d := range data {
				_, err := c.Write(d)
				mustf(t, err, "send %s", names[i])
				// One at a time: a burst of 64 KiB datagrams could overflow
				// the receive buffer, and UDP would drop some.
				waitFor(t, names[i], func() bool {
					return obs.event("datagram/ok")+obs.event("datagram/decode_error") == i+1
				})
			}
			evs := sink.wait(t, 16)
			waitFor(t, "counts", func() bool { return obs.event("datagram/decode_error") == 1 && obs.event("datagram/ok") == 16 })
			byCallID := map[string]opensips.Event{}
			for _, ev := range evs {
				if ev.Transport != opensips.TransportDatagram {
					t.Fatalf("transport %q", ev.Transport)
				}
				byCallID[ev.Req.CallID] = ev
			}
			if ev := byCallID["a5763bc23070e4d5@lab"]; ev.Req.Body != "caf\xe9 na\xefve" {
				t.Fatalf("latin-1 body %q", ev.Req.Body)
			}
			var biggest opensips.Event
			for _, ev := range evs {
				if len(ev.Req.Body) > len(biggest.Req.Body) {
					biggest = ev
				}
			}
			if len(biggest.Req.Body) != 65206 || strings.Trim(biggest.Req.Body, "Thequickbrownfxjmpsvtlazydg0123456789. ") != "" {
				t.Fatalf("largest body: %d bytes", len(biggest.Req.Body))
			}
			if ev := evs[len(evs)-1]; ev.Req.Body != "injected via MI" || ev.Req.RURI != "sip:chat-1@127.0.0.1" {
				t.Fatalf("18: %+v", ev)
			}
		})
	}
}

func TestDatagramLimits(t *testing.T) {
	_, data := capturedDatagrams(t)
	sink := newSink(true)
	s, obs := startDatagram(t, "udp", "127.0.0.1:0", sink, func(s *opensips.EventDatagramServer) { s.MaxDatagram = 4096 })
	c, err := net.Dial("udp", s.LocalAddr().String())
	mustf(t, err, "dial")
	defer c.Close()
	c.Write(data[7]) // 08-body-60000
	c.Write(data[6]) // 07-body-3000 fits
	waitFor(t, "too_big", func() bool { return obs.event("datagram/too_big") == 1 && obs.event("datagram/ok") == 1 })

	sink.set(errors.New("full"), "")
	c.Write(data[0])
	waitFor(t, "busy", func() bool { return obs.event("datagram/busy") == 1 })
	sink.set(fmt.Errorf("%w: unusable From", opensips.ErrBadEvent), "")
	c.Write(data[0])
	waitFor(t, "refused as bad", func() bool { return obs.event("datagram/decode_error") == 1 })
	sink.set(nil, "#create chat-1")
	c.Write(data[0])
	c.Write(data[1])
	waitFor(t, "panic recovered", func() bool { return obs.event("datagram/panic") == 1 && obs.event("datagram/ok") == 2 })

	// A datagram with an id gets no reply: event_datagram never waits.
	c.Write([]byte(`{"id":1,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"x"}}`))
	c.Write([]byte(`{"jsonrpc":"2.0","method":"E_OTHER","params":{}}`))
	waitFor(t, "wrong_event", func() bool { return obs.event("datagram/ok") == 3 && obs.event("datagram/wrong_event") == 1 })

	refused, obs3 := startDatagram(t, "udp", "127.0.0.1:0", sink, func(s *opensips.EventDatagramServer) {
		s.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	c2, _ := net.Dial("udp", refused.LocalAddr().String())
	defer c2.Close()
	c2.Write(data[0])
	waitFor(t, "refused_source", func() bool { return obs3.event("datagram/refused_source") == 1 })
}

// TestDatagramFromFake subscribes udp: and unix: sockets to the fake and
// raises events through it.
func TestDatagramFromFake(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	mi := openClient(t, fake.MISocket(), nil)
	udpSink, unixSink := newSink(true), newSink(true)
	udp, _ := startDatagram(t, "udp", "127.0.0.1:0", udpSink, nil)
	path := filepath.Join(t.TempDir(), "ev.sock")
	startDatagram(t, "unixgram", path, unixSink, nil)
	for _, socket := range []string{"udp:" + udp.LocalAddr().String(), "unix:" + path} {
		sub := &opensips.Subscriber{Client: mi, Socket: socket, Logger: testLogger(t)}
		mustf(t, sub.Open(context.Background()), "subscriber")
		t.Cleanup(func() { sub.Close() })
		mustf(t, fake.WaitSubscribed(ctxTimeout(t, 5*time.Second), "E_IMC_MESSAGE", socket), "subscribed")
	}
	ev := opensipstest.NewEvent("sip:bob@127.0.0.1", "sip:chat-2@127.0.0.1", "before\x00after")
	_, err := fake.Raise(ev)
	mustf(t, err, "raise")
	for _, sink := range []*recordingSink{udpSink, unixSink} {
		got := sink.wait(t, 1)[0]
		if got.Req.Body != "before" || got.Req.From != "sip:bob@127.0.0.1" || got.Req.CallID != ev.CallID {
			t.Fatalf("event %+v", got)
		}
	}
	// Over 65,507 bytes OpenSIPS sends nothing (events/datagram/16).
	big := opensipstest.NewEvent("sip:bob@127.0.0.1", "sip:chat-2@127.0.0.1", strings.Repeat("\x01", 20000))
	if _, err := fake.Raise(big); !errors.Is(err, opensipstest.ErrMessageTooLong) {
		t.Fatalf("raise of a 120 kB event: %v", err)
	}
}
