// Package sipua is a small SIP user agent over UDP, for the tests and
// benchmarks that put a real OpenSIPS between imcd and its users: one
// socket that registers users with itself as their contact, answers the
// MESSAGEs they receive (200, another code, or never), records or counts
// them, and sends MESSAGEs as any of them. It speaks just enough SIP for
// that (RFC 3261's transaction basics over UDP, no TCP, no dialogs, no
// authentication); it is not a general SIP stack.
package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// Received is one MESSAGE the agent received, copied out of its datagram.
type Received struct {
	// User is the user part of the request URI: which registered user it
	// reached.
	User   string
	From   string
	CallID string
	Body   string
	At     time.Time
	// Hops is the number of Via headers: 1 when OpenSIPS sent it
	// straight here, 2 when it went through the proxy once more.
	Hops int
	// Code is the final status it was answered with (0: none).
	Code int
}

// Agent is one UDP socket playing any number of users.
type Agent struct {
	// Answer gives the final status a MESSAGE to user gets: 200 when nil;
	// 0 leaves it unanswered (a phone that is gone). Set before Open.
	Answer func(user string) int
	// OnMessage, when set, sees every MESSAGE received, on the reader
	// goroutine (keep it short). Set before Open.
	OnMessage func(*Received)
	// Record keeps every MESSAGE received for Messages. Set before Open.
	Record bool

	conn  *net.UDPConn
	pconn *ipv4.PacketConn
	addr  *net.UDPAddr
	done  chan struct{}
	wg    sync.WaitGroup

	seq         atomic.Uint64
	received    atomic.Int64
	retransmits atomic.Int64

	// seen and seenOld are the MESSAGEs received lately, by Call-ID and
	// CSeq, with the status they were answered: a retransmission is the
	// same request (RFC 3261's server transaction), answered again the
	// same, and neither counted nor recorded twice. Every timer F the old
	// generation is dropped, so that a request is remembered at least
	// that long at no cost per message. Only the reader touches them.
	seen, seenOld map[string]int
	rotated       time.Time

	mu       sync.Mutex
	messages []Received
	pending  map[string]chan int // Call-ID → the waiting Do
	codes    map[int]int64       // final responses to Send, by status
	unsent   int64
	// resend are Send's requests awaiting their final response, by
	// Call-ID: written again as RFC 3261's timer E says (500 ms, doubling
	// up to 4 s) until timer F (32 s) gives up on them (timedOut).
	resend   map[string]*outgoing
	timedOut int64
}

// outgoing is one request of Send awaiting its final response.
type outgoing struct {
	msg   []byte
	dst   *net.UDPAddr
	next  time.Time
	every time.Duration
	until time.Time
}

// RFC 3261's timers for a non-INVITE transaction over UDP: timer J, how
// long a server transaction absorbs retransmissions, is timer F too.
const (
	timerT1 = 500 * time.Millisecond
	timerT2 = 4 * time.Second
	timerF  = 64 * timerT1
)

// batch is how many datagrams one read or write system call moves.
const batch = 64

// Open binds the agent to addr ("127.0.0.1:0" for any port) and starts
// its reader.
func (a *Agent) Open(addr string) error {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return err
	}
	// A burst of fan-out must not be lost in the kernel before it is read.
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	a.conn, a.pconn = conn, ipv4.NewPacketConn(conn)
	a.addr = conn.LocalAddr().(*net.UDPAddr)
	a.done = make(chan struct{})
	a.pending = make(map[string]chan int)
	a.codes = make(map[int]int64)
	a.resend = make(map[string]*outgoing)
	a.seen, a.seenOld = make(map[string]int), make(map[string]int)
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.read() }()
	go func() { defer a.wg.Done(); a.retransmit() }()
	return nil
}

// Addr is the address the agent bound: every user's contact.
func (a *Agent) Addr() *net.UDPAddr { return a.addr }

// Close stops the reader and closes the socket.
func (a *Agent) Close() error {
	close(a.done)
	err := a.conn.Close()
	a.wg.Wait()
	return err
}

// Received counts the MESSAGEs received so far, retransmissions left out.
func (a *Agent) Received() int64 { return a.received.Load() }

// Retransmits counts the retransmissions received (a MESSAGE again with
// the same Call-ID and CSeq), answered but not counted in Received.
func (a *Agent) Retransmits() int64 { return a.retransmits.Load() }

// Messages returns a copy of what was recorded (Record), oldest first.
func (a *Agent) Messages() []Received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Received(nil), a.messages...)
}

// MessagesTo returns what user received, oldest first (Record).
func (a *Agent) MessagesTo(user string) []Received {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Received
	for _, m := range a.messages {
		if m.User == user {
			out = append(out, m)
		}
	}
	return out
}

// Responses returns how many final responses each status got, for the
// requests of Send; how many Send could not write; and how many got no
// final response within timer F (32 s, all retransmissions included).
func (a *Agent) Responses() (codes map[int]int64, unsent, timedOut int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[int]int64, len(a.codes))
	for k, v := range a.codes {
		out[k] = v
	}
	return out, a.unsent, a.timedOut
}

// retransmit writes again what Send sent and got no final response for,
// on timer E, until timer F.
func (a *Agent) retransmit() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var due []*outgoing
	for {
		select {
		case <-a.done:
			return
		case now := <-t.C:
			due = due[:0]
			a.mu.Lock()
			for id, o := range a.resend {
				switch {
				case now.After(o.until):
					delete(a.resend, id)
					a.timedOut++
				case now.After(o.next):
					o.every = min(2*o.every, timerT2)
					o.next = now.Add(o.every)
					due = append(due, o)
				}
			}
			a.mu.Unlock()
			for _, o := range due {
				_, _ = a.conn.WriteToUDP(o.msg, o.dst)
			}
		}
	}
}

func (a *Agent) read() {
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65535)}
	}
	out := make([]ipv4.Message, 0, batch)
	bufs := make([][]byte, batch)
	var m Message
	for {
		n, err := a.pconn.ReadBatch(msgs, 0)
		if err != nil {
			select {
			case <-a.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		out = out[:0]
		for i := 0; i < n; i++ {
			if parse(msgs[i].Buffers[0][:msgs[i].N], &m) != nil {
				continue
			}
			if m.Status != 0 {
				a.response(&m)
				continue
			}
			code := a.request(&m, now)
			if code == 0 {
				continue
			}
			bufs[i] = appendResponse(bufs[i][:0], &m, code, reason(code))
			out = append(out, ipv4.Message{Buffers: [][]byte{bufs[i]}, Addr: msgs[i].Addr})
		}
		for len(out) > 0 {
			w, err := a.pconn.WriteBatch(out, 0)
			if err != nil {
				break
			}
			out = out[w:]
		}
	}
}

// request handles one request and returns the status to answer (0: none).
func (a *Agent) request(m *Message, now time.Time) int {
	if string(m.Method) != "MESSAGE" {
		return 200 // OPTIONS and the like: present
	}
	if now.Sub(a.rotated) > timerF {
		a.seen, a.seenOld, a.rotated = make(map[string]int), a.seen, now
	}
	key := string(m.CallID) + " " + string(m.CSeq)
	first, ok := a.seen[key]
	if !ok {
		first, ok = a.seenOld[key]
	}
	if ok {
		a.retransmits.Add(1)
		return first
	}
	user := string(URIUser(m.RURI))
	code := 200
	if a.Answer != nil {
		code = a.Answer(user)
	}
	a.seen[key] = code
	a.received.Add(1)
	if a.OnMessage == nil && !a.Record {
		return code
	}
	r := Received{User: user, From: string(m.From), CallID: string(m.CallID), Body: string(m.Body), At: now, Hops: len(m.Vias), Code: code}
	if a.OnMessage != nil {
		a.OnMessage(&r)
	}
	if a.Record {
		a.mu.Lock()
		a.messages = append(a.messages, r)
		a.mu.Unlock()
	}
	return code
}

func (a *Agent) response(m *Message) {
	if m.Status < 200 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.pending[string(m.CallID)]
	if !ok {
		if _, sent := a.resend[string(m.CallID)]; sent {
			delete(a.resend, string(m.CallID))
			a.codes[m.Status]++
		}
		return
	}
	delete(a.pending, string(m.CallID))
	ch <- m.Status
}

// Request is one request an Agent sends.
type Request struct {
	Method string // MESSAGE when ""
	RURI   string // sip:chat-1@127.0.0.1
	From   string // sip:alice@127.0.0.1 (a tag is added)
	To     string // the R-URI when ""
	// Headers are extra header lines, each without CRLF.
	Headers []string
	Body    string
}

func (a *Agent) build(r *Request, callID string, n uint64) []byte {
	method := r.Method
	if method == "" {
		method = "MESSAGE"
	}
	to := r.To
	if to == "" {
		to = r.RURI
	}
	b := make([]byte, 0, 400+len(r.Body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, r.RURI...)
	b = append(b, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	b = append(b, a.addr.String()...)
	b = append(b, ";branch=z9hG4bK-sipua-"...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, "\r\nMax-Forwards: 70\r\nFrom: <"...)
	b = append(b, r.From...)
	b = append(b, ">;tag=sipua-"...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, "\r\nTo: <"...)
	b = append(b, to...)
	b = append(b, ">\r\nCall-ID: "...)
	b = append(b, callID...)
	b = append(b, "\r\nCSeq: 1 "...)
	b = append(b, method...)
	b = append(b, "\r\n"...)
	for _, h := range r.Headers {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	if r.Body != "" {
		b = append(b, "Content-Type: text/plain\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.Body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, r.Body...)
	return b
}

// callID returns a new Call-ID and the number it is made of, which also
// makes the branch and the From tag.
func (a *Agent) callID() (string, uint64) {
	n := a.seq.Add(1)
	return strconv.FormatUint(n, 10) + "-" + strconv.Itoa(a.addr.Port) + "@sipua", n
}

// Send sends r to dst without waiting for its final response, which is
// counted in Responses; like any UA over UDP it writes it again until one
// comes (RFC 3261's timers E and F).
func (a *Agent) Send(dst *net.UDPAddr, r *Request) error {
	id, n := a.callID()
	msg := a.build(r, id, n)
	now := time.Now()
	a.mu.Lock()
	a.resend[id] = &outgoing{msg: msg, dst: dst, next: now.Add(timerT1), every: timerT1, until: now.Add(timerF)}
	a.mu.Unlock()
	_, err := a.conn.WriteToUDP(msg, dst)
	if err != nil {
		a.mu.Lock()
		a.unsent++
		delete(a.resend, id)
		a.mu.Unlock()
	}
	return err
}

// Do sends r to dst and waits for its final response, sending it again
// (RFC 3261's timer A: 500 ms, doubling) until one comes or ctx ends.
func (a *Agent) Do(ctx context.Context, dst *net.UDPAddr, r *Request) (int, error) {
	id, n := a.callID()
	ch := make(chan int, 1)
	a.mu.Lock()
	a.pending[id] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.pending, id)
		a.mu.Unlock()
	}()
	msg := a.build(r, id, n)
	wait := 500 * time.Millisecond
	for {
		if _, err := a.conn.WriteToUDP(msg, dst); err != nil {
			return 0, err
		}
		t := time.NewTimer(wait)
		select {
		case code := <-ch:
			t.Stop()
			return code, nil
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%s %s: no final response: %w", r.Method, r.RURI, ctx.Err())
		case <-t.C:
			wait = min(2*wait, 4*time.Second)
		}
	}
}

// Register registers user@domain with the agent's own address as the
// contact, through the registrar at dst, and waits for the 200.
func (a *Agent) Register(ctx context.Context, dst *net.UDPAddr, user, domain string, expires time.Duration) error {
	aor := "sip:" + user + "@" + domain
	code, err := a.Do(ctx, dst, &Request{Method: "REGISTER", RURI: "sip:" + domain, From: aor, To: aor,
		Headers: []string{
			"Contact: <sip:" + user + "@" + a.addr.String() + ">",
			"Expires: " + strconv.Itoa(int(expires/time.Second)),
		}})
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("REGISTER %s: %d", aor, code)
	}
	return nil
}
