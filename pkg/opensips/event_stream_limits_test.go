package opensips_test

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
)

// event is a reliable-mode event with id n.
func event(n int) string {
	return `{"id":` + strconv.Itoa(n) + `,"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":"sip:a@b","ruri":"sip:c@d","body":"x"}}`
}

// served sends event n on c and waits for its acknowledgement: c is open
// and read.
func served(t *testing.T, c net.Conn, n int) {
	t.Helper()
	if _, err := io.WriteString(c, event(n)); err != nil {
		t.Fatalf("event %d: %v", n, err)
	}
	expectReply(t, c, `{"jsonrpc":"2.0","result":"OK","id":`+strconv.Itoa(n)+`}`)
}

// unfinished is the first half of an event: a frame begun.
func unfinished(n int) string { e := event(n); return e[:len(e)/2] }

// TestStreamMaxConnsRefuse: beyond MaxConns a new connection is closed at
// once and counted; those open go on.
func TestStreamMaxConnsRefuse(t *testing.T) {
	s, obs := startStream(t, newSink(true), func(s *opensips.EventStreamServer) { s.MaxConns = 3 })
	var open []net.Conn
	for i := range 3 {
		c := dial(t, s.LocalAddr())
		served(t, c, i)
		open = append(open, c)
	}
	extra := dial(t, s.LocalAddr())
	expectClosed(t, extra)
	waitFor(t, "too_many_connections counted", func() bool { return obs.event("stream/too_many_connections") == 1 })
	for i, c := range open {
		served(t, c, 10+i)
	}
	// One gone, one more may come.
	open[0].Close()
	waitFor(t, "a new connection served", func() bool {
		c, err := net.Dial("tcp", s.LocalAddr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		io.WriteString(c, event(20))
		c.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(c, b, 10)
		return strings.Contains(string(b[:n]), `"result":"OK"`)
	})
}

// TestStreamMaxConnsCloseIdle: with AtMaxCloseIdle the connection idle the
// longest makes room; one in the middle of a frame is never chosen, and
// when all are, the new one is refused.
func TestStreamMaxConnsCloseIdle(t *testing.T) {
	s, obs := startStream(t, newSink(true), func(s *opensips.EventStreamServer) {
		s.MaxConns, s.AtMaxConns = 2, opensips.AtMaxCloseIdle
	})
	c1 := dial(t, s.LocalAddr())
	served(t, c1, 1)
	c2 := dial(t, s.LocalAddr())
	served(t, c2, 2) // c2 sent the last bytes
	c3 := dial(t, s.LocalAddr())
	expectClosed(t, c1)
	served(t, c3, 3)
	served(t, c2, 4)
	waitFor(t, "counted", func() bool { return obs.event("stream/too_many_connections") == 1 })

	// c2 is in the middle of a frame: c3 goes for c4.
	io.WriteString(c2, unfinished(5))
	waitForFrame(t, s, 1)
	c4 := dial(t, s.LocalAddr())
	expectClosed(t, c3)
	served(t, c4, 6)
	// Both in the middle of a frame: c5 is refused.
	io.WriteString(c4, unfinished(7))
	waitForFrame(t, s, 2)
	c5 := dial(t, s.LocalAddr())
	expectClosed(t, c5)
	waitFor(t, "counted", func() bool { return obs.event("stream/too_many_connections") == 3 })
	e := event(5)
	io.WriteString(c2, e[len(e)/2:])
	expectReply(t, c2, `{"jsonrpc":"2.0","result":"OK","id":5}`)
}

// waitForFrame waits until the server has seen n frames begun and not
// finished.
func waitForFrame(t *testing.T, s *opensips.EventStreamServer, n int) {
	t.Helper()
	waitFor(t, "frames begun", func() bool { _, mid := s.Connections(); return mid == n })
}

// TestStreamFrameTimeout: a frame begun and not finished within
// FrameTimeout closes its connection (counted); a quiet connection between
// frames stays open however long.
func TestStreamFrameTimeout(t *testing.T) {
	s, obs := startStream(t, newSink(true), func(s *opensips.EventStreamServer) { s.FrameTimeout = 200 * time.Millisecond })
	quiet := dial(t, s.LocalAddr())
	served(t, quiet, 1)
	slow := dial(t, s.LocalAddr())
	io.WriteString(slow, unfinished(2))
	expectClosed(t, slow)
	waitFor(t, "frame_timeout counted", func() bool { return obs.event("stream/frame_timeout") == 1 })
	// quiet waited longer than FrameTimeout between frames (as long as
	// slow took to be closed): still served.
	served(t, quiet, 3)

	// A frame trickled byte by byte is closed as well.
	trickle := dial(t, s.LocalAddr())
	go func() {
		for _, b := range []byte(event(4)) {
			if _, err := trickle.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	expectClosed(t, trickle)
	waitFor(t, "frame_timeout counted", func() bool { return obs.event("stream/frame_timeout") == 2 })
}

// TestStreamUnfinishedFramesBounded is issue 19's flood at the server: 200
// connections each holding an unfinished frame of 250 KiB. At most
// MaxConns are served at once, the rest refused; those served are closed
// after FrameTimeout; the server's goroutines go back to none.
func TestStreamUnfinishedFramesBounded(t *testing.T) {
	s, obs := startStream(t, newSink(true), func(s *opensips.EventStreamServer) { s.FrameTimeout = 500 * time.Millisecond })
	before := runtime.NumGoroutine()
	frame := []byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"body":"` + strings.Repeat("x", 250<<10))
	var conns []net.Conn
	for range 200 {
		c, err := net.Dial("tcp", s.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go c.Write(frame) // blocks once the server stops reading: a goroutine of the test's
		conns = append(conns, c)
	}
	// The test's own goroutines (one writer per connection) are not the
	// server's: count the server's by its refusals and closes instead,
	// and watch that it never serves more than the cap at once.
	waitFor(t, "all 200 refused or timed out", func() bool {
		if open, _ := s.Connections(); open > opensips.DefaultMaxConns {
			t.Fatalf("%d connections served at once, over the cap of %d", open, opensips.DefaultMaxConns)
		}
		return obs.event("stream/too_many_connections")+obs.event("stream/frame_timeout") == 200
	})
	for _, c := range conns {
		expectClosed(t, c)
	}
	waitFor(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+5 })
	// And OpenSIPS still gets in.
	served(t, dial(t, s.LocalAddr()), 1)
}
