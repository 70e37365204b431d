package opensipstest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Call is one MI request the fake received, whatever became of it.
type Call struct {
	Method string // "" when there was none (a crash)
	ID     string // the raw JSON id, "" for a notification
	Raw    []byte
	From   string // the sender's address
	// Received is when the fake read the request from its socket, Served
	// when its MI process took it from the receive buffer.
	Received, Served time.Time
	Crash            bool // the real mi_datagram would have crashed on it
}

// HeaderField is one header of a t_uac_dlg headers param.
type HeaderField struct {
	Name, Value string
}

// Delivery is one t_uac_dlg request the fake accepted: a MESSAGE that a real
// OpenSIPS would have sent.
type Delivery struct {
	// MIMethod is "t_uac_dlg" or "tm:uac_dlg"; ID the raw JSON id ("" for
	// a notification).
	MIMethod, ID string
	// Method is the SIP method param ("MESSAGE").
	Method string
	RURI   string
	// Headers is the headers param as OpenSIPS uses it: literal "\r\n"
	// sequences already turned into CRLF.
	Headers string
	Fields  []HeaderField
	// From and To are the URIs inside < >; FromTag the From tag.
	From, FromTag, To string
	// ContentType and InReplyTo are those headers' values, "" when absent.
	ContentType, InReplyTo string
	NextHop                string
	Socket                 string // the socket param ("" when none)
	Body                   string
	HasBody                bool
	Received               time.Time
	Raw                    []byte
	// Status is the final status the fake gives the transaction ("200 OK",
	// "404 Not Found", "408 Request Timeout", ...), and Unregistered says
	// that the 404 came from the proxy because the AOR had no live
	// contact (RequireRegistration): the MESSAGE reached nobody.
	Status       string
	Unregistered bool
}

// Header returns the value of the first header named name (case-insensitive).
func (d *Delivery) Header(name string) (string, bool) {
	for _, f := range d.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Reply is a subscriber's answer to one reliable-mode event.
type Reply struct {
	Socket string
	ID     int64  // the id of the event request
	Raw    []byte // the reply as received; nil when none came
	Err    error  // timeout, connection lost
}

// recorder keeps what the fake saw and wakes waiters on every change.
type recorder struct {
	mu         sync.Mutex
	calls      []Call
	deliveries []Delivery
	looped     []Delivery // t_uac_dlg requests the script took (throughScript)
	replies    []Reply
	crashes    int
	ch         chan struct{}
}

func (r *recorder) init() { r.ch = make(chan struct{}) }

// changed returns a channel closed at the next change.
func (r *recorder) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ch
}

func (r *recorder) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notifyLocked()
}

func (r *recorder) notifyLocked() {
	close(r.ch)
	r.ch = make(chan struct{})
}

func (r *recorder) addCall(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	if c.Crash {
		r.crashes++
	}
	r.notifyLocked()
}

func (r *recorder) addLooped(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.looped = append(r.looped, d)
	r.notifyLocked()
}

func (r *recorder) addDelivery(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries = append(r.deliveries, d)
	r.notifyLocked()
}

func (r *recorder) addReply(rp Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, rp)
	r.notifyLocked()
}

// Calls returns every MI request received so far, in arrival order.
func (s *Server) Calls() []Call {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]Call(nil), s.rec.calls...)
}

// CallsTo returns the MI requests received for method.
func (s *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Deliveries returns every accepted t_uac_dlg so far, in arrival order.
// Looped returns the t_uac_dlg requests to rooms that the script raised
// as events (Options.RoomPrefix), in arrival order.
func (s *Server) Looped() []Delivery {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]Delivery(nil), s.rec.looped...)
}

// Deliveries returns the accepted t_uac_dlg requests so far (not those the
// script took: Looped), in arrival order.
func (s *Server) Deliveries() []Delivery {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]Delivery(nil), s.rec.deliveries...)
}

// BodiesTo returns the bodies of the accepted t_uac_dlg requests to uri
// so far, in arrival order.
func (s *Server) BodiesTo(uri string) []string {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	var out []string
	for _, d := range s.rec.deliveries {
		if d.To == uri {
			out = append(out, d.Body)
		}
	}
	return out
}

// WaitDeliveries waits until at least n deliveries were recorded and returns
// them all.
func (s *Server) WaitDeliveries(ctx context.Context, n int) ([]Delivery, error) {
	for {
		s.rec.mu.Lock()
		got, ch := len(s.rec.deliveries), s.rec.ch
		s.rec.mu.Unlock()
		if got >= n {
			return s.Deliveries(), nil
		}
		select {
		case <-ctx.Done():
			return s.Deliveries(), fmt.Errorf("opensipstest: %d deliveries, want %d: %w", got, n, ctx.Err())
		case <-ch:
		}
	}
}

// Replies returns the reliable-mode replies received so far.
func (s *Server) Replies() []Reply {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return append([]Reply(nil), s.rec.replies...)
}

// Crashes returns how many requests would have crashed a real mi_datagram
// (no method, or a JSON array). imcd must never send one.
func (s *Server) Crashes() int {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return s.rec.crashes
}

// Reset forgets the recorded calls, deliveries, replies and crashes, and
// restarts the MI counters (Received, Dropped, Served, Refused, and
// PeakOutstanding from the transactions now in progress). Rules,
// subscriptions, registrations and transactions in progress are kept.
func (s *Server) Reset() {
	s.miq.resetCounts()
	s.tx.resetCounts()
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.calls, s.rec.deliveries, s.rec.replies, s.rec.crashes = nil, nil, nil, 0
	s.rec.notifyLocked()
}
