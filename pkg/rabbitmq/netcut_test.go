package rabbitmq

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
)

// cutProxy forwards TCP connections to the broker until cut: then the
// connections open at that moment stay open but carry nothing, as when a
// machine or its network is lost (no FIN, no RST). Later connections are
// forwarded again.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cuts   []chan struct{} // one per connection, closed by cut
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		cut := make(chan struct{})
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.cuts = append(p.cuts, cut)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, b, cut)
		go p.pipe(b, c, cut)
	}
}

// pipe copies src to dst until the cut, then drops what arrives.
func (p *cutProxy) pipe(src, dst net.Conn, cut chan struct{}) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-cut:
			continue
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// cut silences every connection open now.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cuts {
		select {
		case <-c:
		default:
			close(c)
		}
	}
	p.cuts = nil
}

// TestFailoverNetworkCut loses the active consumer's network without a
// FIN (a machine lost): the broker notices the missing heartbeats and hands
// the queue to the standby, which gets the uncommitted deliveries again, in
// order. The time from the cut to the first redelivery is reported: about
// three heartbeats (the broker's detection).
func TestFailoverNetworkCut(t *testing.T) {
	base := testbroker.URL(t)
	a := newAdmin(t, base)
	top := a.topology(base, 1, false)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()

	hold := newRecorder(holdAll)
	const heartbeat = time.Second
	active := openConsumer(t, &Consumer{URL: u.String(), Queues: top.Queues, Sink: hold, Name: "imcd-active", Heartbeat: heartbeat})
	eventually(t, "active consuming", func() bool { return active.Ready() == nil })
	rec := newRecorder(applyAll)
	sink, first := rec.stamped()
	standby := openConsumer(t, &Consumer{URL: base, Queues: top.Queues, Name: "imcd-standby", Sink: sink})
	eventually(t, "standby consuming", func() bool { return standby.Ready() == nil })

	a.publishLines(top.Exchange, 1, 10)
	hold.waitEvents(t, 10)
	proxy.cut()
	cut := time.Now()
	evs := rec.waitEvents(t, 10)
	took := (<-first).Sub(cut)
	inOrder(t, numbers(t, evs), 10)
	for _, ev := range evs {
		if !ev.Origin.Redelivered {
			t.Fatalf("event %s not redelivered", ev.Req.Body)
		}
	}
	t.Logf("failover: network cut of the active consumer to the first redelivery at the standby: %v (heartbeat %v)", took, heartbeat)
}
