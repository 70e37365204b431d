package opensips_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// sendLog records Send completions by tag, in the order they come, and
// fails on a second one for a tag.
type sendLog struct {
	t     testing.TB
	mu    sync.Mutex
	order []uint64
	outs  map[uint64]delivery.Outcome
}

func newSendLog(t testing.TB) *sendLog { return &sendLog{t: t, outs: map[uint64]delivery.Outcome{}} }

func (l *sendLog) done(tag uint64, o delivery.Outcome, _ bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.outs[tag]; dup {
		l.t.Errorf("tag %d completed twice", tag)
	}
	l.outs[tag] = o
	l.order = append(l.order, tag)
}

// completed returns the tags in the order they completed.
func (l *sendLog) completed() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}

func (l *sendLog) wait(t testing.TB, n int) map[uint64]delivery.Outcome {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d Send outcomes", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.outs) >= n
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[uint64]delivery.Outcome, len(l.outs))
	for k, v := range l.outs {
		out[k] = v
	}
	return out
}

// TestSendStatuses sends four requests at once and gets every outcome back
// under its tag.
func TestSendStatuses(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 100 * time.Millisecond})
	fake.SetStatus("sip:nf@127.0.0.1", "404 Not Found")
	fake.SetNoAnswer("sip:silent@127.0.0.1")
	fake.SetError("sip:gone@127.0.0.1", 476, "Unresolvable destination (476/MI/UAC)")
	obs := newObserver()
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.Observer = obs })
	log := newSendLog(t)
	users := []string{"ok", "nf", "silent", "gone"}
	for i, u := range users {
		mustf(t, c.Send(newNotice(u, "to "+u), uint64(100+i), log.done), "send %s", u)
		c.Flush()
	}
	waitFor(t, "all four requests at the fake", func() bool { return len(fake.Deliveries()) >= 3 })
	outs := log.wait(t, 4)
	f := func(tag uint64, class string, unreachable bool) {
		t.Helper()
		o := outs[tag]
		if o.Class() != class || o.MemberUnreachable() != unreachable {
			t.Fatalf("tag %d: %+v class %s", tag, o, o.Class())
		}
	}
	f(100, "2xx", false)
	f(101, "4xx", true)
	f(102, "4xx", true)
	f(103, "error", true)
	if c.Pending() != 0 || obs.delivery("2xx") != 1 || obs.delivery("4xx") != 2 {
		t.Fatalf("pending %d, counts %v", c.Pending(), obs)
	}
	ds := fake.Deliveries()
	if len(ds) != 3 || ds[0].FromTag == ds[1].FromTag {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestSendRefusals(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	never := func(tag uint64, o delivery.Outcome, _ bool) {
		t.Errorf("done called for a refused Send: %d %+v", tag, o)
	}
	c := &opensips.MIClient{Addr: fake.MISocket()}
	if err := c.Send(newNotice("bob", "x"), 1, never); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("before Open: %v", err)
	}
	c = openClient(t, fake.MISocket(), nil)
	bad := &imc.Notice{From: room, To: member("bob"), Body: "x", ContentType: "text/plain\r\nX: y"}
	if err := c.Send(bad, 2, never); !errors.Is(err, opensips.ErrUnsafeHeader) {
		t.Fatalf("unsafe: %v", err)
	}
	c.Close()
	if err := c.Send(newNotice("bob", "x"), 3, never); !errors.Is(err, opensips.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if c.Pending() != 0 {
		t.Fatalf("pending %d", c.Pending())
	}
}

func TestSendLostUnreachableAborted(t *testing.T) {
	t.Run("no reply is lost", func(t *testing.T) {
		addr, received := silentMI(t)
		c := openClient(t, addr, func(c *opensips.MIClient) { c.Timeout = 150 * time.Millisecond })
		log := newSendLog(t)
		start := time.Now()
		mustf(t, c.Send(newNotice("bob", "x"), 7, log.done), "send")
		c.Flush()
		o := log.wait(t, 1)[7]
		if !o.Lost() || o.Class() != "timeout" || time.Since(start) < 150*time.Millisecond || received() != 1 {
			t.Fatalf("%+v after %v, received %d", o, time.Since(start), received())
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		c := openClient(t, closedPort(t), func(c *opensips.MIClient) { c.Timeout = 10 * time.Second })
		log := newSendLog(t)
		for i := range 10 {
			mustf(t, c.Send(newNotice("bob", "x"), uint64(i), log.done), "send")
		}
		c.Flush()
		outs := log.wait(t, 10)
		for tag, o := range outs {
			if !o.NotSent() {
				t.Fatalf("tag %d: %+v", tag, o)
			}
		}
		waitFor(t, "nothing pending", func() bool { return c.Pending() == 0 })
	})
	t.Run("close aborts", func(t *testing.T) {
		fake := startFake(t, opensipstest.Options{FrTimeout: 10 * time.Second})
		fake.SetNoAnswer("sip:silent@127.0.0.1")
		c := openClient(t, fake.MISocket(), nil)
		log := newSendLog(t)
		mustf(t, c.Send(newNotice("silent", "x"), 9, log.done), "send")
		c.Flush()
		waitFor(t, "at the fake", func() bool { return len(fake.Deliveries()) == 1 })
		c.Close()
		if o := log.wait(t, 1)[9]; o.Class() != "aborted" {
			t.Fatalf("%+v", o)
		}
	})
}

// leanMI answers every t_uac_dlg with 200 OK and allocates nothing per
// request, so that a benchmark measures the client.
func leanMI(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	mustf(tb, err, "listen")
	_ = pc.SetReadBuffer(4 << 20)
	go func() {
		buf := make([]byte, 65536)
		out := make([]byte, 0, 128)
		key := []byte(`"id":`)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			i := bytes.LastIndex(buf[:n], key)
			if i < 0 {
				continue
			}
			id := buf[i+len(key) : n-1]
			out = append(out[:0], `{"jsonrpc":"2.0","result":{"Status":"200 OK"},"id":`...)
			out = append(out, id...)
			out = append(out, '}')
			_, _ = pc.WriteToUDPAddrPort(out, from)
		}
	}()
	tb.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// BenchmarkSend measures one Send and its reply through a lean responder,
// at most 256 outstanding.
func BenchmarkSend(b *testing.B) {
	c := openClient(b, leanMI(b), nil)
	n := newNotice("bob", "<alice@127.0.0.1>: hello everybody in chat-1")
	slots := make(chan struct{}, 256)
	var failed sync.Once
	done := func(tag uint64, o delivery.Outcome, _ bool) {
		if !o.Delivered() {
			failed.Do(func() { b.Errorf("tag %d: %+v", tag, o) })
		}
		<-slots
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		slots <- struct{}{}
		if err := c.Send(n, uint64(i), done); err != nil {
			b.Fatal(err)
		}
		c.Flush()
	}
	for range cap(slots) {
		slots <- struct{}{}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// routes is a Router with one contact per member, recording Forget.
type routes struct {
	mu     sync.Mutex
	to     map[string]opensips.Route
	forgot []string
}

func (r *routes) Route(m imc.URI) (opensips.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.to[m.User]
	return rt, ok
}

func (r *routes) Forget(m imc.URI) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.to, m.User)
	r.forgot = append(r.forgot, m.User)
}

// TestSendToContact: with a Router, a member's MESSAGE goes to their
// contact (ruri, next_hop, socket), the others' to their address of
// record; a direct one that OpenSIPS refuses (a socket it no longer has)
// ends not sent, to be written again, and the contact is forgotten; one
// that ends 408 makes it forgotten too.
func TestSendToContact(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 100 * time.Millisecond})
	fake.SetError("sip:carol@10.0.0.3:5062", 404, "Local socket not found")
	fake.SetNoAnswer("sip:dave@10.0.0.4")
	rt := &routes{to: map[string]opensips.Route{
		"bob":   {RURI: "sip:bob@10.0.0.2:5062", NextHop: "sip:203.0.113.7:40112", Socket: "udp:127.0.0.1:5060"},
		"carol": {RURI: "sip:carol@10.0.0.3:5062", Socket: "udp:10.9.9.9:5060"},
		"dave":  {RURI: "sip:dave@10.0.0.4"},
	}}
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.Routes = rt; c.NextHop = "sip:proxy.example.com" })
	if !c.InOrder(member("bob")) || c.InOrder(member("alice")) {
		t.Fatal("InOrder: a member with a contact keeps order, one through the proxy does not")
	}
	log := newSendLog(t)
	for i, u := range []string{"bob", "alice", "carol", "dave"} {
		mustf(t, c.Send(newNotice(u, "to "+u), uint64(i), log.done), "send %s", u)
	}
	c.Flush()
	outs := log.wait(t, 4)
	by := map[string]opensipstest.Delivery{}
	for _, d := range fake.Deliveries() {
		by[d.Body] = d
	}
	if d := by["to bob"]; d.RURI != "sip:bob@10.0.0.2:5062" || d.NextHop != "sip:203.0.113.7:40112" || d.Socket != "udp:127.0.0.1:5060" {
		t.Errorf("bob: %+v", d)
	}
	if d := by["to alice"]; d.RURI != "sip:alice@127.0.0.1" || d.NextHop != "sip:proxy.example.com" || d.Socket != "" {
		t.Errorf("alice, through the proxy: %+v", d)
	}
	if !outs[0].Delivered() || !outs[1].Delivered() {
		t.Errorf("bob %+v, alice %+v", outs[0], outs[1])
	}
	if !outs[2].NotSent() {
		t.Errorf("carol, refused: %+v, want not sent (written again)", outs[2])
	}
	if outs[3].Status != 408 {
		t.Errorf("dave: %+v", outs[3])
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !slices.Equal(rt.forgot, []string{"carol", "dave"}) && !slices.Equal(rt.forgot, []string{"dave", "carol"}) {
		t.Errorf("forgot %v, want carol and dave", rt.forgot)
	}
}

// TestInOrderThroughProxy: through the proxy a member's requests keep
// their order only when the operator says the proxy's socket has one
// worker (proxy_in_order), and never without a proxy to go through.
func TestInOrderThroughProxy(t *testing.T) {
	for _, tc := range []struct {
		nextHop string
		inOrder bool
		want    bool
	}{
		{"sip:127.0.0.1:5070", true, true},
		{"sip:127.0.0.1:5070", false, false},
		{"", true, false},
	} {
		c := &opensips.MIClient{NextHop: tc.nextHop, NextHopInOrder: tc.inOrder}
		if got := c.InOrder(member("bob")); got != tc.want {
			t.Errorf("next_hop %q, in order %v: InOrder %v, want %v", tc.nextHop, tc.inOrder, got, tc.want)
		}
	}
	// With contacts in use, a member without one goes through the proxy,
	// and may change path between two requests: never in order.
	c := &opensips.MIClient{NextHop: "sip:127.0.0.1:5070", NextHopInOrder: true, Routes: &routes{to: map[string]opensips.Route{}}}
	if c.InOrder(member("bob")) {
		t.Error("InOrder through the proxy with contacts in use")
	}
}
