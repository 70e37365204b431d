package opensipstest

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

func waitCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func whichRequest(id int) []byte {
	return []byte(`{"jsonrpc":"2.0","method":"which","params":{"command":"which"},"id":` + strconv.Itoa(id) + `}`)
}

// withID returns a captured request with its id replaced.
func withID(t *testing.T, req []byte, oldID, newID string) []byte {
	t.Helper()
	old := []byte(`"id":` + oldID + `}`)
	if !bytes.HasSuffix(req, old) {
		t.Fatalf("request does not end with %s: %s", old, req)
	}
	return append(bytes.Clone(bytes.TrimSuffix(req, old)), `"id":`+newID+`}`...)
}

// replyIDs reads n replies and returns their ids in arrival order, then
// checks that no further reply comes.
func replyIDs(t *testing.T, c *client, n int) []int {
	t.Helper()
	var p fastjson.Parser
	var ids []int
	for range n {
		r := c.recv(5 * time.Second)
		if r == nil {
			t.Fatalf("%d replies, want %d", len(ids), n)
		}
		v, err := p.ParseBytes(r)
		if err != nil {
			t.Fatalf("reply %s: %v", r, err)
		}
		ids = append(ids, v.GetInt("id"))
	}
	if r := c.recv(200 * time.Millisecond); r != nil {
		t.Fatalf("reply beyond the %d expected: %s", n, r)
	}
	return ids
}

// TestMIRecvBufferDropsAtBound fills the receive buffer while the MI
// process is stuck: exactly what exceeds the bound is dropped, unanswered,
// and the rest is served in arrival order.
func TestMIRecvBufferDropsAtBound(t *testing.T) {
	reqLen := len(whichRequest(10)) // ids 10..21 all have two digits
	f := func(opts Options, sent, wantQueued int) {
		t.Helper()
		s := start(t, opts)
		c := newClient(t, s)
		s.PauseMI()
		for i := range sent {
			c.send(whichRequest(10 + i))
		}
		st, err := s.WaitMIStats(waitCtx(t), func(st MIStats) bool { return st.Received == sent })
		if err != nil {
			t.Fatal(err)
		}
		if st.Queued != wantQueued || st.Dropped != sent-wantQueued || s.Dropped() != sent-wantQueued || st.Served != 0 {
			t.Fatalf("bounds %d/%dB: %+v, want %d queued and %d dropped", opts.MIRecvBuffer, opts.MIRecvBufferBytes, st, wantQueued, sent-wantQueued)
		}
		s.ResumeMI()
		ids := replyIDs(t, c, wantQueued)
		for i, id := range ids {
			if id != 10+i {
				t.Fatalf("bounds %d/%dB: replies %v, want the first %d in order", opts.MIRecvBuffer, opts.MIRecvBufferBytes, ids, wantQueued)
			}
		}
		if st := s.MIStats(); st.Served != wantQueued || st.Queued != 0 || len(s.Calls()) != wantQueued {
			t.Fatalf("bounds %d/%dB: after resume %+v, %d calls", opts.MIRecvBuffer, opts.MIRecvBufferBytes, st, len(s.Calls()))
		}
	}
	f(Options{MIRecvBuffer: 5}, 12, 5)
	f(Options{MIRecvBuffer: 1}, 3, 1)
	f(Options{MIRecvBufferBytes: 3*reqLen + reqLen/2}, 12, 3)
	f(Options{MIRecvBuffer: 8, MIRecvBufferBytes: 2 * reqLen}, 5, 2) // the tighter bound wins
	f(Options{}, 12, 12)                                             // no bound: nothing dropped
}

// TestMIRate checks that requests are served no faster than MIRate, from
// the first one's arrival, and that a full buffer drops at its bound while
// the rate holds it.
func TestMIRate(t *testing.T) {
	const rate = 100 // 10 ms per request
	interval := time.Second / rate
	s := start(t, Options{MIRate: rate})
	c := newClient(t, s)
	const n = 20
	for i := range n {
		c.send(whichRequest(i + 1))
	}
	if ids := replyIDs(t, c, n); ids[0] != 1 || ids[n-1] != n {
		t.Fatalf("replies %v", ids)
	}
	calls := s.Calls()
	for i, call := range calls {
		if earliest := calls[0].Received.Add(time.Duration(i) * interval); call.Served.Before(earliest) {
			t.Fatalf("request %d served %v after the first arrived, before its turn at %v",
				i, call.Served.Sub(calls[0].Received), time.Duration(i)*interval)
		}
	}

	// A paused, bounded, paced MI process: 4 of 10 are kept, then served at
	// the rate from the moment it resumes.
	s = start(t, Options{MIRate: rate, MIRecvBuffer: 4})
	c = newClient(t, s)
	s.PauseMI()
	for i := range 10 {
		c.send(whichRequest(i + 1))
	}
	if _, err := s.WaitMIStats(waitCtx(t), func(st MIStats) bool { return st.Received == 10 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * interval) // stuck long enough that a rate counted from the arrivals would show
	resumed := time.Now()
	s.ResumeMI()
	if ids := replyIDs(t, c, 4); ids[3] != 4 || s.Dropped() != 6 {
		t.Fatalf("replies %v, %d dropped", ids, s.Dropped())
	}
	for i, call := range s.Calls() {
		if call.Served.Before(resumed.Add(time.Duration(i) * interval)) {
			t.Fatalf("request %d served %v after the resume", i, call.Served.Sub(resumed))
		}
	}
}

// TestMaxTransactions refuses t_uac_dlg beyond the cap with tm's
// out-of-memory error, counts what is in progress, and accepts again once
// transactions end.
func TestMaxTransactions(t *testing.T) {
	s := start(t, Options{MaxTransactions: 2, FrTimeout: 200 * time.Millisecond})
	s.SetNoAnswer("sip:ok@127.0.0.1")
	c := newClient(t, s)
	req := readWire(t, "t_uac_dlg/ok_200.request.json")
	c.send(withID(t, req, "101", "1"))
	c.send(readWire(t, "t_uac_dlg/notification_no_id.request.json")) // a transaction too, without reply
	if got, want := string(c.roundTrip(withID(t, req, "101", "3"))), `{"jsonrpc":"2.0","error":{"code":500,"message":"Server error occurred (2/MI/UAC)"},"id":3}`; got != want {
		t.Fatalf("refusal:\n got %s\nwant %s", got, want)
	}
	if st := s.MIStats(); st.Outstanding != 2 || st.PeakOutstanding != 2 || st.Refused != 1 || len(s.Deliveries()) != 2 {
		t.Fatalf("%+v, %d deliveries", st, len(s.Deliveries()))
	}
	if r := string(c.recv(2 * time.Second)); r != `{"jsonrpc":"2.0","result":{"Status":"408 Request Timeout"},"id":1}` {
		t.Fatalf("408: %s", r)
	}
	if _, err := s.WaitMIStats(waitCtx(t), func(st MIStats) bool { return st.Outstanding == 0 }); err != nil {
		t.Fatal(err)
	}
	s.ClearRules()
	if r := string(c.roundTrip(withID(t, req, "101", "4"))); !bytes.Contains([]byte(r), []byte(`"Status":"200 OK"`)) {
		t.Fatalf("after the transactions ended: %s", r)
	}
	if s.PeakOutstanding() != 2 || s.Outstanding() != 0 {
		t.Fatalf("peak %d, outstanding %d", s.PeakOutstanding(), s.Outstanding())
	}

	// A restart loses the transactions in progress.
	s.SetDelay("sip:ok@127.0.0.1", time.Hour)
	c.send(withID(t, req, "101", "5"))
	if _, err := s.WaitMIStats(waitCtx(t), func(st MIStats) bool { return st.Outstanding == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Outstanding() != 0 {
		t.Fatalf("%d outstanding after a restart", s.Outstanding())
	}
	s.Reset()
	if st := s.MIStats(); st.PeakOutstanding != 0 || st.Refused != 0 || st.Received != 0 {
		t.Fatalf("after Reset: %+v", st)
	}
}
